"""Run bookkeeping without Terraform: the log cap, claims, the reaper, a missing Terraform, and
what a stale apply does to its change request."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import ChangeRequest, ChangeStatus, Run, RunKind, RunStatus, Workspace
from provisioning.services import runs
from provisioning.services.changes import change_request_run_finished
from provisioning.services.execution import run_execute
from tests.factories import RESOURCES, register_orders


@pytest.fixture
def workspace(microservice, cluster):
    return Workspace.objects.create(microservice=microservice, cluster=cluster)


def test_log_is_capped_with_a_marker(workspace):
    run = Run.objects.create(workspace=workspace, kind=RunKind.PLAN, status=RunStatus.RUNNING)
    log = runs.RunLog(run.pk, max_bytes=50)
    for i in range(20):
        log.write(f"line {i:02d}")
    log.flush()
    log.write("after the cut")
    log.flush()
    stored = Run.objects.get(pk=run.pk).log
    assert stored.startswith("line 00\nline 01\n")
    assert stored.endswith(runs.TRUNCATION_MARKER)
    assert "after the cut" not in stored
    assert len(stored.replace(runs.TRUNCATION_MARKER, "").encode()) <= 50


def test_a_run_is_claimed_once(workspace):
    run = Run.objects.create(workspace=workspace, kind=RunKind.PLAN)
    assert runs.run_claim(run_id=run.pk) is True
    assert runs.run_claim(run_id=run.pk) is False
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING


def test_reaper_leaves_live_runs_alone(workspace, cluster):
    stale = Run.objects.create(
        workspace=workspace,
        kind=RunKind.PLAN,
        status=RunStatus.RUNNING,
        heartbeat_at=timezone.now() - timedelta(minutes=10),
    )
    other = Workspace.objects.create(
        microservice=workspace.microservice,
        cluster=type(cluster).objects.create(
            name="other",
            environment="dev",
            account_id=cluster.account_id,
            region=cluster.region,
            oidc_provider_arn=cluster.oidc_provider_arn,
        ),
    )
    live = Run.objects.create(
        workspace=other, kind=RunKind.PLAN, status=RunStatus.RUNNING, heartbeat_at=timezone.now()
    )
    assert runs.runs_reap_interrupted(heartbeat_timeout=timedelta(minutes=5)) == [stale.pk]
    assert Run.objects.get(pk=live.pk).status == RunStatus.RUNNING


def test_missing_terraform_fails_the_run_naming_the_setting(workspace, settings, tmp_path):
    settings.TERRAFORM_BIN = str(tmp_path / "no-such-terraform")
    settings.TERRAFORM_WORK_DIR = tmp_path / "work"
    spec = {
        "microservice": "orders",
        "namespace": "shop",
        "service_accounts": ["orders"],
        "resources": RESOURCES,
        "cluster": {
            "name": "demo",
            "account_id": workspace.cluster.account_id,
            "region": workspace.cluster.region,
            "oidc_provider_arn": workspace.cluster.oidc_provider_arn,
        },
    }
    run = Run.objects.create(workspace=workspace, kind=RunKind.PLAN, spec=spec)
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("The run could not start:")
    assert "TERRAFORM_BIN" in run.error


def test_a_stale_apply_sends_the_change_back_for_a_fresh_plan(
    developer, team, cluster, django_capture_on_commit_callbacks
):
    change = register_orders(developer, team, cluster, justification="x")
    workspace = Workspace.objects.create(microservice=change.microservice, cluster=cluster)
    plan = Run.objects.create(
        workspace=workspace,
        change_request=change,
        kind=RunKind.PLAN,
        status=RunStatus.SUCCEEDED,
        has_changes=True,
        plan_sha256="a" * 64,
    )
    Run.objects.create(
        workspace=workspace,
        change_request=change,
        kind=RunKind.APPLY,
        plan_run=plan,
        status=RunStatus.FAILED,
        error="terraform apply: the saved plan is stale",
    )
    ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.APPLYING)
    with django_capture_on_commit_callbacks(execute=False):
        change_request_run_finished(change_request_id=change.pk, stale=True)
    assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.SUBMITTED
    fresh = Run.objects.filter(change_request=change, kind=RunKind.PLAN, status=RunStatus.QUEUED)
    assert fresh.count() == 1 and fresh.get().workspace == workspace


def test_drift_checks_plan_every_idle_applied_workspace(
    workspace, cluster, django_capture_on_commit_callbacks
):
    from provisioning.models import WorkspaceStatus

    applied = Run.objects.create(
        workspace=workspace,
        kind=RunKind.APPLY,
        status=RunStatus.SUCCEEDED,
        spec={"microservice": "orders"},
        finished_at=timezone.now(),
    )
    Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.APPLIED)
    with django_capture_on_commit_callbacks(execute=False):
        first = runs.workspaces_check_drift()
        second = runs.workspaces_check_drift()  # the first check is still queued: skipped
    (drift,) = Run.objects.filter(pk__in=first)
    assert drift.kind == RunKind.DRIFT and drift.spec == applied.spec
    assert second == []
