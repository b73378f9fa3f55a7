"""The security review of a change request: every finished plan is analysed (policies, grant diff,
findings, access matrix) by the real analysis; a high finding blocks approval; a change that only
removes access may be approved by the system (AUTO_APPROVE_NO_NEW_ACCESS).

Terraform is not run here: a plan run is finished the way the worker finishes it (``run_claim``,
``run_finish``, ``change_request_run_finished``), with the spec the real submit rendered.
"""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from provisioning.analysis import lint, matrix, review
from provisioning.iam import catalog as catalog_module
from provisioning.iam import policies, spec
from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    ChangeStatus,
    Review,
    Run,
    RunKind,
    RunStatus,
    Workspace,
    WorkspaceStatus,
)
from provisioning.selectors import change_request_review
from provisioning.services.changes import (
    BlockingFindingsError,
    change_request_approve,
    change_request_create,
    change_request_run_finished,
    change_request_submit,
)
from provisioning.services.runs import run_claim, run_finish
from tests.factories import RESOURCES
from tests.factories import register_orders as register

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def finish_plans(change: ChangeRequest, *, sha: str = "a" * 64) -> list[Run]:
    """What the worker does after `terraform plan` succeeded, for every queued plan."""
    for run in change.runs.filter(kind=RunKind.PLAN, status=RunStatus.QUEUED):
        assert run_claim(run_id=run.pk)
        run_finish(
            run_id=run.pk,
            status=RunStatus.SUCCEEDED,
            exit_code=2,
            plan_sha256=sha,
            plan_summary={"add": [], "change": [], "replace": [], "destroy": []},
            has_changes=True,
        )
        change_request_run_finished(change_request_id=change.pk)
    change.refresh_from_db()
    return list(change.runs.filter(kind=RunKind.PLAN).order_by("pk"))


def planned_create(developer, team, cluster, **overrides) -> ChangeRequest:
    change = register(developer, team, cluster, **overrides)
    change_request_submit(actor=developer, change_request=change)
    finish_plans(change)
    return change


def make_applied(change: ChangeRequest) -> None:
    """The create applied: the workspace has its key and the apply run carries the live spec."""
    [plan] = change.runs.filter(kind=RunKind.PLAN)
    Workspace.objects.filter(pk=plan.workspace_id).update(
        status=WorkspaceStatus.APPLIED, kms_key_arn=KEY_ARN
    )
    Run.objects.create(
        workspace_id=plan.workspace_id,
        change_request=change,
        kind=RunKind.APPLY,
        status=RunStatus.SUCCEEDED,
        spec=plan.spec,
        plan_run=plan,
    )
    ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.APPLIED)


def planned_change(
    developer, change: ChangeRequest, resources: list[dict], justification: str = "less access"
) -> ChangeRequest:
    proposal = change_request_create(
        actor=developer,
        microservice=change.microservice,
        kind="change",
        spec={**change.spec, "resources": resources},
        justification=justification,
    )
    change_request_submit(actor=developer, change_request=proposal)
    finish_plans(proposal, sha="b" * 64)
    return proposal


@pytest.fixture
def widened_catalog(monkeypatch, tmp_path):
    """An admin widens the action catalog with an administration action (dynamodb:DeleteTable):
    the real catalog file, edited, loaded through the real parser, in every module that reads it.
    """
    data = json.loads(catalog_module.CATALOG_PATH.read_text())
    statement = data["kinds"]["dynamodb_table"]["levels"]["read_write"]["statements"][0]
    statement["actions"] = sorted([*statement["actions"], "dynamodb:DeleteTable"])
    path = tmp_path / "action_catalog.json"
    path.write_text(json.dumps(data))
    widened = catalog_module.parse_catalog(json.loads(path.read_text()))
    for module in (spec, policies, lint, matrix, review):
        monkeypatch.setattr(module, "load_catalog", lambda *a, **k: widened)
    return widened


def test_finished_plans_are_analysed_and_stored(developer, team, cluster):
    change = planned_create(developer, team, cluster)
    assert change.status == ChangeStatus.PLANNED
    [plan] = change.runs.filter(kind=RunKind.PLAN)
    analysis = plan.analysis
    # A create: the key does not exist yet, so the policies carry a marked placeholder.
    assert analysis["policies"]["kms_key"]["placeholder"] is True
    assert analysis["findings"] == [] and analysis["matrix"]["verdict"] == "ok"
    assert analysis["diff"]["removed"] == {"identity": [], "trust": [], "key": []}
    subjects = [g["service_account"] for g in analysis["diff"]["added"]["trust"]]
    assert subjects == ["orders"]
    summary = change_request_review(change_request=change)["summary"]
    assert summary["classification"] == "new_trust_subject" and summary["blocking"] is False


def test_a_change_is_diffed_against_the_live_spec_with_the_real_key(developer, team, cluster):
    create = planned_create(developer, team, cluster)
    make_applied(create)
    change = planned_change(developer, create, RESOURCES[:1])  # drops the invoices bucket
    result = change_request_review(change_request=change)
    [workspace] = result["workspaces"]
    analysis = workspace["analysis"]
    assert analysis["policies"]["kms_key"] == {
        **analysis["policies"]["kms_key"],
        "arn": KEY_ARN,
        "placeholder": False,
    }
    removed = {g["action"] for g in analysis["diff"]["removed"]["identity"]}
    assert "s3:GetObject" in removed and not analysis["diff"]["added"]["identity"]
    assert result["summary"]["classification"] == "no_new_access"


def test_a_high_finding_blocks_approval(developer, reviewer, team, cluster, widened_catalog):
    change = planned_create(developer, team, cluster)
    [plan] = change.runs.filter(kind=RunKind.PLAN)
    rules = {(f["rule"], f["severity"]) for f in plan.analysis["findings"]}
    assert ("IRSA005", "high") in rules  # the real lint found the administration action
    with pytest.raises(BlockingFindingsError) as exc:
        change_request_approve(
            actor=reviewer, change_request=change, shown_plan_hashes={str(plan.pk): "a" * 64}
        )
    assert "dynamodb:DeleteTable" in str(exc.value)
    assert {f["cluster"] for f in exc.value.findings} == {"demo"}
    assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.PLANNED
    assert not Review.objects.exists()


def test_without_the_widened_catalog_the_same_request_is_approved(
    developer, reviewer, team, cluster
):
    change = planned_create(developer, team, cluster)
    [plan] = change.runs.filter(kind=RunKind.PLAN)
    review_row = change_request_approve(
        actor=reviewer, change_request=change, shown_plan_hashes={str(plan.pk): "a" * 64}
    )
    assert review_row.reviewer == reviewer and review_row.automatic is False


@override_settings(AUTO_APPROVE_NO_NEW_ACCESS=True)
def test_a_removal_only_change_is_approved_automatically(developer, team, cluster):
    create = planned_create(developer, team, cluster)
    # A create adds access: it waits for a human even with the setting on.
    assert ChangeRequest.objects.get(pk=create.pk).status == ChangeStatus.PLANNED
    assert not Review.objects.exists()
    make_applied(create)
    change = planned_change(developer, create, RESOURCES[:1])
    assert change.status == ChangeStatus.APPLYING
    review_row = Review.objects.get(change_request=change)
    assert review_row.automatic and review_row.reviewer is None
    assert "No new access" in review_row.comment
    [plan] = change.runs.filter(kind=RunKind.PLAN)
    assert review_row.plan_hashes == {str(plan.pk): "b" * 64}
    event = AuditEvent.objects.get(action="change_request.auto_approved")
    assert event.actor is None and event.data["reason"] == review_row.comment
    assert event.data["plan_hashes"] == review_row.plan_hashes
    assert Run.objects.get(kind=RunKind.APPLY, status=RunStatus.QUEUED).plan_run == plan


@override_settings(AUTO_APPROVE_NO_NEW_ACCESS=True)
def test_new_access_is_not_approved_automatically(developer, team, cluster):
    create = planned_create(developer, team, cluster, resources=RESOURCES[:1])
    make_applied(create)
    change = planned_change(developer, create, RESOURCES)  # adds the invoices bucket
    assert change.status == ChangeStatus.PLANNED
    summary = change_request_review(change_request=change)["summary"]
    assert summary["classification"] == "new_access_own_resources"
    assert not Review.objects.filter(change_request=change).exists()


@override_settings(AUTO_APPROVE_NO_NEW_ACCESS=True)
def test_a_decommission_is_never_approved_automatically(developer, team, cluster):
    from provisioning.services.ui_support import change_request_decommission

    create = planned_create(developer, team, cluster)
    make_applied(create)
    change = change_request_decommission(
        actor=developer,
        microservice=create.microservice,
        justification="replaced",
    )
    change_request_submit(actor=developer, change_request=change)
    finish_plans(change, sha="c" * 64)
    assert change.status == ChangeStatus.PLANNED
    summary = change_request_review(change_request=change)["summary"]
    assert summary["classification"] == "decommission"
    assert not Review.objects.filter(change_request=change).exists()
    assert not AuditEvent.objects.filter(action="change_request.auto_approved").exists()


def test_the_setting_is_off_by_default(developer, team, cluster):
    create = planned_create(developer, team, cluster)
    make_applied(create)
    change = planned_change(developer, create, RESOURCES[:1])
    assert change.status == ChangeStatus.PLANNED
    assert not Review.objects.filter(change_request=change).exists()
