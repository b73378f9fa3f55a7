"""The `irsa` CLI as a pipeline runs it: against a live server (its own thread), a real Celery
worker on a private Redis, real Terraform and the sandbox. One declarative apply is planned, shown
(grant diff, findings), declared again (a no-op), approved by a reviewer and applied."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from irsa_cli.__main__ import main
from provisioning.models import ChangeRequest, RunKind, RunStatus, Workspace
from provisioning.permissions import SECURITY_GROUP
from provisioning.services.runs import wait_for_run
from provisioning.services.tokens import api_token_create
from tests.factories import TeamFactory, UserFactory
from tests.integration.conftest import REFERENCE_RESOURCES, make_demo_cluster
from tests.integration.test_review_flow import worker  # noqa: F401 (the module's worker)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def irsa(monkeypatch, capsys, server, token, *argv) -> tuple[int, str]:
    monkeypatch.setenv("IRSA_URL", server.url)
    monkeypatch.setenv("IRSA_TOKEN", token)
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_pipeline_applies_a_spec_with_the_cli(
    worker,  # noqa: F811
    live_server,
    demo_aws,
    unique_name,
    tmp_path,
    monkeypatch,
    capsys,
):
    team = TeamFactory(name="payments")
    developer, reviewer = UserFactory(username="alice"), UserFactory(username="rita")
    team.members.add(developer)
    reviewer.groups.add(Group.objects.get_or_create(name=SECURITY_GROUP)[0])
    make_demo_cluster(demo_aws)
    alice = api_token_create(actor=developer, name="test")[1]
    rita = api_token_create(actor=reviewer, name="test")[1]
    spec = tmp_path / "irsa.json"
    spec.write_text(
        json.dumps(
            {
                "microservice": unique_name,
                "team": "payments",
                "namespace": "shop",
                "service_accounts": [unique_name],
                "resources": REFERENCE_RESOURCES,
                "clusters": ["demo"],
                "justification": "stores orders",
            }
        )
    )

    code, out = irsa(monkeypatch, capsys, live_server, alice, "whoami")
    assert code == 0 and out.strip() == "alice (teams: payments)"

    # register + plan, waiting for it: the grant diff and the verdict are printed
    code, out = irsa(monkeypatch, capsys, live_server, alice, "apply", spec, "--wait")
    assert code == 0, out
    change = ChangeRequest.objects.get(microservice__name=unique_name)
    assert change.status == "planned"
    assert f"change request #{change.pk}: create {unique_name} is planned" in out
    assert "+ dynamodb:PutItem on arn:aws:dynamodb:" in out
    assert f"trust shop:{unique_name} via" in out and "no blocking finding" in out

    # the same spec again: nothing new, the same request (as JSON for scripts)
    code, out = irsa(monkeypatch, capsys, live_server, alice, "--json", "apply", spec)
    assert code == 0 and json.loads(out)["id"] == change.pk
    assert ChangeRequest.objects.filter(microservice__name=unique_name).count() == 1

    plan = change.runs.get(kind=RunKind.PLAN)
    code, out = irsa(monkeypatch, capsys, live_server, alice, "logs", plan.pk, "--follow")
    assert code == 0 and "Plan:" in out

    # Alice may not approve her own request; Rita may
    code, out = irsa(monkeypatch, capsys, live_server, alice, "approve", change.pk)
    assert code == 1 and "HTTP 403" in out
    code, out = irsa(monkeypatch, capsys, live_server, rita, "approve", change.pk, "-m", "ok")
    assert code == 0 and f"#{change.pk}" in out
    apply = Workspace.objects.get(microservice__name=unique_name).runs.get(kind=RunKind.APPLY)
    code, out = irsa(monkeypatch, capsys, live_server, alice, "logs", apply.pk, "--follow")
    assert code == 0 and "Apply complete!" in out
    assert wait_for_run(apply.pk, timeout=60).status == RunStatus.SUCCEEDED

    code, out = irsa(monkeypatch, capsys, live_server, alice, "status", unique_name)
    assert code == 0 and f"demo: applied, arn:aws:iam::{demo_aws.account_id}:role/" in out
    assert f"create {unique_name} is applied" in out

    # usage errors are exit status 2, with what to do
    monkeypatch.delenv("IRSA_TOKEN")
    assert main(["whoami"]) == 2
    assert "set IRSA_URL" in capsys.readouterr().err


def test_the_cli_says_a_dead_token_is_refused(
    live_server, monkeypatch, capsys, expired_token, revoked_token
):
    """Alice's expired and revoked tokens: the API's 401 and its reason, exit status 1."""
    for key in (expired_token, revoked_token):
        code, out = irsa(monkeypatch, capsys, live_server, key, "whoami")
        assert code == 1 and "HTTP 401" in out, out
        assert "Invalid, expired or revoked token." in out
        code, out = irsa(monkeypatch, capsys, live_server, key, "--json", "status", "orders")
        assert code == 1 and "HTTP 401" in out, out


def doc_examples() -> dict[str, str]:
    """The blocks of docs/api.md marked ``<!-- example: NAME -->``."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    pattern = re.compile(r"<!-- example: (\S+) -->\n```\w+\n(.*?)```", re.DOTALL)
    return {name: body for name, body in pattern.findall(text)}


def test_the_pipeline_examples_of_the_api_docs_run(
    worker,  # noqa: F811
    live_server,
    demo_aws,
    unique_name,
    tmp_path,
):
    """docs/api.md's walk-through as written (the service renamed to a fresh name): the CLI
    declares and plans, then the raw API declares again (the same request), follows the plan's
    log by offsets and checks the review as policy as code."""
    team = TeamFactory(name="payments")
    developer = UserFactory(username="alice")
    team.members.add(developer)
    make_demo_cluster(demo_aws)
    examples = {k: v.replace("orders", unique_name) for k, v in doc_examples().items()}
    (tmp_path / "irsa.json").write_text(examples["irsa.json"])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "irsa"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m irsa_cli "$@"\n')
    wrapper.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "PORTAL": live_server.url,
        "TOKEN": api_token_create(actor=developer, name="test")[1],
    }
    script = "set -euo pipefail\n" + examples["cli"] + examples["raw"]
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    change = ChangeRequest.objects.get(microservice__name=unique_name)
    assert change.status == "planned"
    assert f"#{change.pk} planned" in done.stdout  # the second apply: the same request
    assert "Plan: " in done.stdout and "true" in done.stdout.splitlines()[-1]
