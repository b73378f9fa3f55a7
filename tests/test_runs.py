"""Run bookkeeping without Terraform: the log cap, claims, the reaper, a missing Terraform, and
what a stale apply does to its change request."""

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    ChangeStatus,
    Run,
    RunKind,
    RunStatus,
    Workspace,
    WorkspaceStatus,
)
from provisioning.services import runs
from provisioning.services.changes import change_request_run_finished
from provisioning.services.execution import run_end_unsuccessfully, run_execute
from tests.factories import RESOURCES, ClusterFactory, register_orders


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
        # Applied two intervals ago and never checked: due at any tick, whatever its slot.
        finished_at=timezone.now() - timedelta(seconds=2 * settings.DRIFT_CHECK_INTERVAL + 1),
    )
    Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.APPLIED)
    with django_capture_on_commit_callbacks(execute=False):
        first = runs.workspaces_check_drift()
        second = runs.workspaces_check_drift()  # the first check is still queued: skipped
    (drift,) = Run.objects.filter(pk__in=first)
    assert drift.kind == RunKind.DRIFT and drift.spec == applied.spec
    assert second == []


def test_old_drift_checks_are_purged_but_each_workspaces_latest_is_kept(
    workspace, cluster, microservice, settings
):
    from tests.factories import MicroserviceFactory

    settings.DRIFT_RUN_RETENTION = 3600
    long_ago = timezone.now() - timedelta(days=2)
    other = Workspace.objects.create(microservice=MicroserviceFactory(), cluster=cluster)

    def run(ws: Workspace, kind: str = RunKind.DRIFT, status: str = RunStatus.SUCCEEDED) -> Run:
        made = Run.objects.create(workspace=ws, kind=kind, status=status)
        Run.objects.filter(pk=made.pk).update(created_at=long_ago)
        return made

    old = [run(workspace) for _ in range(3)]  # the last of them is the workspace's latest check
    plan = run(workspace, kind=RunKind.PLAN)
    failed = run(other, status=RunStatus.FAILED)
    only = run(other)  # other's latest
    running = run(other, status=RunStatus.RUNNING)  # active: never deleted, whatever its age
    recent = Run.objects.create(workspace=other, kind=RunKind.DRIFT, status=RunStatus.SUCCEEDED)

    assert runs.drift_runs_purge(batch_size=1) == 4  # old[0], old[1], failed, only: in batches
    kept = set(Run.objects.values_list("pk", flat=True))
    assert kept == {old[2].pk, plan.pk, running.pk, recent.pk}
    assert failed.pk not in kept and only.pk not in kept  # `recent` is other's latest now
    assert runs.drift_runs_purge() == 0


def _applying_change(developer, team, cluster):
    """A change request in `applying` with a running apply whose worker is long gone."""
    change = register_orders(developer, team, cluster, justification="x")
    workspace = Workspace.objects.create(microservice=change.microservice, cluster=cluster)
    plan = Run.objects.create(
        workspace=workspace,
        change_request=change,
        kind=RunKind.PLAN,
        status=RunStatus.SUCCEEDED,
        has_changes=True,
    )
    apply = Run.objects.create(
        workspace=workspace,
        change_request=change,
        kind=RunKind.APPLY,
        plan_run=plan,
        status=RunStatus.RUNNING,
        heartbeat_at=timezone.now() - timedelta(minutes=10),
    )
    ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.APPLYING)
    return change, apply


def test_an_interrupted_apply_ends_cleanly_everywhere(
    developer, team, cluster, django_capture_on_commit_callbacks
):
    change, apply = _applying_change(developer, team, cluster)
    with django_capture_on_commit_callbacks(execute=False) as reconciliations:
        assert runs.runs_reap_interrupted(heartbeat_timeout=timedelta(minutes=5)) == [apply.pk]
    apply.refresh_from_db()
    assert apply.status == RunStatus.INTERRUPTED and "Terraform is gone" in apply.error
    assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.FAILED
    assert Workspace.objects.get(pk=apply.workspace_id).status == WorkspaceStatus.FAILED
    event = AuditEvent.objects.get(action="change_request.run_interrupted")
    assert event.object_id == str(change.pk) and "marked interrupted" in event.data["message"]
    assert AuditEvent.objects.filter(action="change_request.failed").exists()
    assert len(reconciliations) == 1  # the inventory refresh and reconciliation, after commit


def test_an_interrupted_plan_sends_the_change_back_to_draft(developer, team, cluster):
    change = register_orders(developer, team, cluster, justification="x")
    workspace = Workspace.objects.create(microservice=change.microservice, cluster=cluster)
    plan = Run.objects.create(
        workspace=workspace,
        change_request=change,
        kind=RunKind.PLAN,
        status=RunStatus.RUNNING,
        heartbeat_at=timezone.now() - timedelta(minutes=10),
    )
    ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.SUBMITTED)
    assert runs.runs_reap_interrupted(heartbeat_timeout=timedelta(minutes=5)) == [plan.pk]
    assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.DRAFT
    assert Workspace.objects.get(pk=workspace.pk).status == WorkspaceStatus.NEW


def _sessions_waiting_on_a_lock(timeout: float = 10) -> int:
    """How many other sessions of the test database wait on a lock, once one does (or 0 after
    ``timeout``): the sign that a thread's transaction queued behind ours."""
    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            # The activity view is a per-transaction snapshot unless cleared.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            waiting = cursor.fetchone()[0]
        if waiting or time.monotonic() > deadline:
            return waiting
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_runs_end_and_its_requests_next_step_commit_together(developer, team, cluster):
    """Nobody sees the plan final while its request still says "submitted": the run's end waits
    for the request's row, then both commit at once (a pipeline that waits for the plan run and
    then reads the request must not find it a step behind)."""
    change = register_orders(developer, team, cluster, justification="x")
    workspace = Workspace.objects.create(microservice=change.microservice, cluster=cluster)
    plan = Run.objects.create(
        workspace=workspace, change_request=change, kind=RunKind.PLAN, status=RunStatus.RUNNING
    )
    ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.SUBMITTED)

    def end() -> None:
        try:
            run_end_unsuccessfully(run=plan, status=RunStatus.FAILED, message="plan failed")
        finally:
            connection.close()

    ender = threading.Thread(target=end)
    with transaction.atomic():  # someone else holds the request's row (a reviewer, a cancel)
        list(ChangeRequest.objects.select_for_update().filter(pk=change.pk))
        ender.start()
        assert _sessions_waiting_on_a_lock() == 1, "the run's end should wait on the request's row"
        # Read committed: this sees what the ender has committed so far, which is nothing.
        assert Run.objects.get(pk=plan.pk).status == RunStatus.RUNNING
    ender.join(timeout=30)
    assert not ender.is_alive()
    assert Run.objects.get(pk=plan.pk).status == RunStatus.FAILED
    assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.DRAFT


@pytest.mark.django_db(transaction=True)
def test_the_last_of_a_requests_runs_to_end_moves_it_on(developer, team, cluster):
    """Two plans of one request ending at the same moment: the second end queues behind the
    first and reads it final, so the request cannot be left waiting on runs that have all
    ended (without the lock each would read the other still running)."""
    change = register_orders(developer, team, cluster, justification="x")
    first, second = (
        Run.objects.create(
            workspace=Workspace.objects.create(microservice=change.microservice, cluster=c),
            change_request=change,
            kind=RunKind.PLAN,
            status=RunStatus.RUNNING,
        )
        for c in (cluster, ClusterFactory(name="demo-b"))
    )
    ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.SUBMITTED)

    def end_second() -> None:
        try:
            run_end_unsuccessfully(run=second, status=RunStatus.FAILED, message="plan failed")
        finally:
            connection.close()

    ender = threading.Thread(target=end_second)
    with transaction.atomic():  # the first end, not yet committed when the second begins
        assert run_end_unsuccessfully(run=first, status=RunStatus.FAILED, message="plan failed")
        assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.SUBMITTED
        ender.start()
        assert _sessions_waiting_on_a_lock() == 1, "the second end should queue behind the first"
    ender.join(timeout=30)
    assert not ender.is_alive()
    assert set(Run.objects.filter(change_request=change).values_list("status", flat=True)) == {
        RunStatus.FAILED
    }
    assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.DRAFT


def test_a_run_on_another_host_waits_for_that_hosts_workers(developer, team, cluster):
    _, apply = _applying_change(developer, team, cluster)
    Run.objects.filter(pk=apply.pk).update(host="elsewhere", pid=4242, workdir="/nowhere")
    assert runs.runs_reap_interrupted(heartbeat_timeout=timedelta(minutes=5)) == []
    assert Run.objects.get(pk=apply.pk).status == RunStatus.RUNNING
    reaped = runs.runs_reap_interrupted(
        heartbeat_timeout=timedelta(minutes=5), foreign_timeout=timedelta(minutes=6)
    )
    assert reaped == [apply.pk]
    error = Run.objects.get(pk=apply.pk).error
    # This host cannot see that host's Terraform: the message does not claim it is gone.
    assert "The worker on elsewhere has not reported since" in error
    assert "may still be running there" in error and "is gone" not in error


def test_only_one_adopter_claims_a_stale_run(workspace):
    seen = timezone.now() - timedelta(minutes=10)
    run = Run.objects.create(
        workspace=workspace, kind=RunKind.APPLY, status=RunStatus.RUNNING, heartbeat_at=seen
    )
    assert runs.run_claim_adoption(run_id=run.pk, seen_heartbeat=seen, host="a") is True
    assert runs.run_claim_adoption(run_id=run.pk, seen_heartbeat=seen, host="b") is False
    assert Run.objects.get(pk=run.pk).host == "a"


def test_stale_run_directories_are_swept_but_never_an_active_runs(workspace, settings, tmp_path):
    settings.TERRAFORM_WORK_DIR = tmp_path
    done = Run.objects.create(workspace=workspace, kind=RunKind.PLAN, status=RunStatus.FAILED)
    active = Run.objects.create(workspace=workspace, kind=RunKind.APPLY, status=RunStatus.RUNNING)
    names = [f"run{done.pk}-0123abcd", f"run{active.pk}-4567abcd", "reconcile-ws1-89abcdef"]
    for name in names:
        (tmp_path / "runs" / name / ".io").mkdir(parents=True)
    assert runs.runs_sweep_workdirs(older_than=timedelta(hours=1)) == []
    swept = runs.runs_sweep_workdirs(older_than=timedelta(seconds=-1))
    assert sorted(swept) == sorted([names[0], names[2]])
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [names[1]]


class TestReplan:
    @pytest.fixture
    def failed(self, developer, team, cluster):
        change, apply = _applying_change(developer, team, cluster)
        Run.objects.filter(pk=apply.pk).update(status=RunStatus.FAILED)
        ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.FAILED)
        return change

    def url(self, change):
        return reverse("api-change-request-replan", args=[change.pk])

    def test_the_owner_replans_a_failed_change(
        self, client, teammate, failed, django_capture_on_commit_callbacks
    ):
        client.force_login(teammate)
        with django_capture_on_commit_callbacks() as dispatched:
            response = client.post(self.url(failed), content_type="application/json")
        assert response.status_code == 200, response.json()
        assert response.json()["status"] == "submitted"
        queued = Run.objects.filter(change_request=failed, status=RunStatus.QUEUED)
        assert [r.kind for r in queued] == [RunKind.PLAN] and len(dispatched) == 1
        assert AuditEvent.objects.filter(action="change_request.replanned").exists()

    def test_only_a_failed_change_is_replanned(self, client, developer, team, cluster):
        change = register_orders(developer, team, cluster, justification="x")
        client.force_login(developer)
        response = client.post(self.url(change), content_type="application/json")
        assert response.status_code == 409 and "cannot become" in response.json()["detail"]

    def test_it_validates_ownership(self, client, outsider, failed):
        client.force_login(outsider)
        assert client.post(self.url(failed), content_type="application/json").status_code == 404
        assert ChangeRequest.objects.get(pk=failed.pk).status == ChangeStatus.FAILED

    def test_the_page_offers_it_to_the_owner(self, client, developer, failed):
        client.force_login(developer)
        page = client.get(reverse("change-request-detail", args=[failed.pk]))
        assert reverse("change-request-replan", args=[failed.pk]) in page.content.decode()
        response = client.post(reverse("change-request-replan", args=[failed.pk]))
        assert response.status_code == 302
        assert ChangeRequest.objects.get(pk=failed.pk).status == ChangeStatus.SUBMITTED


def test_the_service_page_and_api_show_what_aws_holds_outside_state(client, developer, workspace):
    item = {
        "type": "kms_key",
        "id": "1234abcd-0000-0000-0000-000000000000",
        "arn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-0000-0000-0000-000000000000",
        "address": "module.kms_key.aws_kms_key.this",
    }
    Workspace.objects.filter(pk=workspace.pk).update(
        reconciliation={"checked_at": "2026-01-01T00:00:00+00:00", "unmanaged": [item]}
    )
    client.force_login(developer)
    page = client.get(reverse("microservice-detail", args=[workspace.microservice.name]))
    assert (
        "Outside Terraform state" in page.content.decode() and item["arn"] in page.content.decode()
    )
    api = client.get(reverse("api-microservice-detail", args=[workspace.microservice.name]))
    (data,) = api.json()["workspaces"]
    assert data["reconciliation"]["unmanaged"] == [item]


def test_admin_import_is_refused_while_a_run_is_active(workspace, reviewer):
    from provisioning.services.reconcile import ReconcileRefused, workspace_reconcile_import

    Workspace.objects.filter(pk=workspace.pk).update(
        reconciliation={"unmanaged": [{"type": "iam_role", "id": "demo-orders"}]}
    )
    Run.objects.create(workspace=workspace, kind=RunKind.PLAN, status=RunStatus.QUEUED)
    with pytest.raises(ReconcileRefused, match="queued or running run"):
        workspace_reconcile_import(actor=reviewer, workspace=workspace, item_ids=["demo-orders"])
    assert not AuditEvent.objects.filter(action="workspace.unmanaged_imported").exists()


def test_after_a_replan_only_the_latest_apply_decides(developer, team, cluster):
    change, failed = _applying_change(developer, team, cluster)
    Run.objects.filter(pk=failed.pk).update(status=RunStatus.FAILED)
    Run.objects.create(
        workspace=failed.workspace,
        change_request=change,
        kind=RunKind.APPLY,
        plan_run=failed.plan_run,
        status=RunStatus.SUCCEEDED,
    )
    change_request_run_finished(change_request_id=change.pk)
    assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.APPLIED


def test_the_admin_import_action_reports_a_refusal_instead_of_failing(client, workspace):
    from tests.factories import UserFactory

    admin = UserFactory(username="ada", is_staff=True, is_superuser=True)
    Workspace.objects.filter(pk=workspace.pk).update(
        reconciliation={"unmanaged": [{"type": "iam_role", "id": "demo-orders"}]}
    )
    Run.objects.create(workspace=workspace, kind=RunKind.APPLY, status=RunStatus.RUNNING)
    client.force_login(admin)
    response = client.post(
        reverse("admin:provisioning_workspace_changelist"),
        {"action": "import_unmanaged", "_selected_action": [workspace.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "has a queued or running run" in response.content.decode()
    assert not AuditEvent.objects.filter(action="workspace.unmanaged_imported").exists()
