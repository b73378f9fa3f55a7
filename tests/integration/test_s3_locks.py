"""Terraform's state lock in the S3 backend, taken and left by real runs (DynamoDB lock table in
the sandbox, real Terraform, PostgreSQL, a real Celery worker on a private Redis).

- Two runs race on one workspace. The database allows one active run per workspace
  (``one_active_run_per_workspace``, tested in test_celery_runs), so Terraform's lock is the
  guard for when the database's view and the machines disagree: a worker cut off mid-apply on
  another host is declared interrupted by the reaper while its Terraform still runs, and the
  retry that the database then allows meets that Terraform's lock. The retry fails with a run
  message naming the lock (id, operation, who, since when); the cut-off apply finishes, and a
  plan afterwards finds nothing to change.
- A run whose Terraform is SIGKILLed mid-apply leaves its lock item; the workspace's admin page
  reports it (id, who, when, operation), every later run fails on it, the admin action refuses
  to release it while a run of the workspace is queued, then releases it (audited), and the
  workspace recovers: reconcile, import what the killed apply created, plan, apply.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse

from provisioning import tasks
from provisioning.models import AuditEvent, Run, RunKind, RunStatus, Workspace
from provisioning.services import runs
from provisioning.services.execution import run_execute
from provisioning.services.reconcile import workspace_reconcile, workspace_reconcile_import
from provisioning.services.state_lock import workspace_state_lock
from sandbox.celery_worker import CeleryWorker
from tests.factories import MicroserviceFactory, TeamFactory
from tests.integration.conftest import make_demo_cluster
from tests.integration.test_celery_runs import broker, spec_for, worker_env  # noqa: F401
from tests.integration.test_s3_backend import (  # noqa: F401 (s3_backend: a fixture)
    BUCKET,
    LOCK_TABLE,
    TABLE_ONLY,
    s3_backend,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
OTHER_HOST = "worker-b"


@pytest.fixture
def workspace(demo_aws, unique_name):
    cluster = make_demo_cluster(demo_aws)
    service = MicroserviceFactory(name=unique_name, team=TeamFactory())
    return Workspace.objects.create(microservice=service, cluster=cluster)


def wait_until(predicate, *, what: str, timeout: float = 180, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)
    return value


def execute(workspace: Workspace, kind: str, spec: dict, plan_run: Run | None = None) -> Run:
    """A run executed here, through the same path a worker's task takes."""
    run = Run.objects.create(workspace=workspace, kind=kind, spec=spec, plan_run=plan_run)
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def lock_while_applying(run: Run, workspace: Workspace):
    """Once the run's apply started, the lock its Terraform holds."""
    return wait_until(
        lambda: (
            Run.objects.filter(pk=run.pk, current_step="apply", pid__isnull=False).exists()
            and workspace_state_lock(workspace=workspace)
        ),
        what="the apply to take the state lock",
    )


def test_two_runs_racing_on_one_workspace_the_second_meets_the_lock(
    s3_backend,  # noqa: F811
    worker_env,  # noqa: F811
    workspace,
    demo_aws,
    aws,
    tmp_path,
):
    env = {
        **worker_env,
        "TERRAFORM_BACKEND": "s3",
        "TERRAFORM_STATE_BUCKET": BUCKET,
        "TERRAFORM_LOCK_TABLE": LOCK_TABLE,
    }
    spec = spec_for(demo_aws, workspace, TABLE_ONLY)
    plan = execute(workspace, RunKind.PLAN, spec)
    assert plan.status == RunStatus.SUCCEEDED, plan.error
    other = CeleryWorker(env=env, log=tmp_path / "worker-b.log", queue="host-b", host=OTHER_HOST)
    terraform_group = 0
    try:
        first = Run.objects.create(
            workspace=workspace, kind=RunKind.APPLY, spec=plan.spec, plan_run=plan
        )
        tasks.apply.apply_async((first.pk,), queue="host-b")
        lock = lock_while_applying(first, workspace)
        assert lock.who.endswith(f"@{OTHER_HOST}") and lock.operation == "OperationTypeApply"
        other.pause()  # cut off: its heartbeats stop, its Terraform (own session) goes on
        # ... slowly: held still until the retry has met its lock, so an apply quicker than the
        # retry's init cannot make the race vanish (the lock item does not expire meanwhile).
        terraform_group = Run.objects.get(pk=first.pk).pid
        os.killpg(terraform_group, signal.SIGSTOP)
        time.sleep(3)
        reaped = runs.runs_reap_interrupted(
            heartbeat_timeout=timedelta(seconds=2), foreign_timeout=timedelta(seconds=2)
        )
        assert reaped == [first.pk]
        interrupted = Run.objects.get(pk=first.pk)
        assert interrupted.status == RunStatus.INTERRUPTED
        assert f"The worker on {OTHER_HOST} has not reported since" in interrupted.error
        assert "may still be running there" in interrupted.error

        second = execute(workspace, RunKind.PLAN, spec)  # the database allows it now
        assert second.status == RunStatus.FAILED
        assert f"locked by lock {lock.lock_id}" in second.error, second.error
        assert f"held by {lock.who}" in second.error
        assert f"since {lock.created[:10]}" in second.error
        assert "operation OperationTypeApply" in second.error and "not forced" in second.error
    finally:
        if terraform_group:
            os.killpg(terraform_group, signal.SIGCONT)
        other.resume()
        wait_until(
            lambda: workspace_state_lock(workspace=workspace) is None,
            what="the cut-off apply to finish and release its lock",
        )
        other.stop()
    # The lock's holder won: its apply completed into the state, nothing is left to change.
    role = f"demo--{workspace.microservice.name}"
    state = aws("s3").get_object(Bucket=BUCKET, Key=f"irsa/{workspace.state_key}.tfstate")
    assert role.encode() in state["Body"].read()
    after = execute(workspace, RunKind.PLAN, spec)
    assert after.status == RunStatus.SUCCEEDED, after.error
    assert after.has_changes is False, after.plan_summary


def test_a_run_killed_mid_apply_leaves_a_lock_an_admin_releases(
    s3_backend,  # noqa: F811
    broker,  # noqa: F811 (reconciliation dispatches go to this private Redis)
    workspace,
    demo_aws,
    admin_client,
    admin_user,
):
    spec = spec_for(demo_aws, workspace, TABLE_ONLY)
    plan = execute(workspace, RunKind.PLAN, spec)
    assert plan.status == RunStatus.SUCCEEDED, plan.error
    doomed = Run.objects.create(
        workspace=workspace, kind=RunKind.APPLY, spec=plan.spec, plan_run=plan
    )

    def apply_in_a_worker_thread() -> None:
        try:
            run_execute(run_id=doomed.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=apply_in_a_worker_thread)
    thread.start()
    held = lock_while_applying(doomed, workspace)
    # The launcher leads the process group of Terraform: both die, nothing records the end.
    os.killpg(Run.objects.get(pk=doomed.pk).pid, signal.SIGKILL)
    thread.join(timeout=120)
    doomed.refresh_from_db()
    assert doomed.status == RunStatus.FAILED, doomed.error

    stale = workspace_state_lock(workspace=workspace)
    assert stale == held
    assert stale.who == f"{getpass.getuser()}@{socket.gethostname()}"  # as Terraform names it
    assert stale.operation == "OperationTypeApply" and stale.created
    page = admin_client.get(reverse("admin:provisioning_workspace_change", args=[workspace.pk]))
    shown = page.content.decode()
    assert f"{stale.lock_id} held by {stale.who} since {stale.created}" in shown
    assert "OperationTypeApply" in shown

    blocked = execute(workspace, RunKind.PLAN, spec)
    assert blocked.status == RunStatus.FAILED
    assert f"locked by lock {stale.lock_id}" in blocked.error, blocked.error

    # Reconcile first (docs/deploy.md): reading the state needs no lock.
    unmanaged = workspace_reconcile(workspace_id=workspace.pk)["unmanaged"]
    changelist = reverse("admin:provisioning_workspace_changelist")
    release = {"action": "release_state_lock", "_selected_action": [workspace.pk]}
    queued = Run.objects.create(workspace=workspace, kind=RunKind.PLAN, spec=spec)
    refused = admin_client.post(changelist, release, follow=True).content.decode()
    assert "queued or running run" in refused
    assert workspace_state_lock(workspace=workspace) == stale
    Run.objects.filter(pk=queued.pk).update(status=RunStatus.CANCELLED)

    released = admin_client.post(changelist, release, follow=True).content.decode()
    assert f"released lock {stale.lock_id}" in released
    assert workspace_state_lock(workspace=workspace) is None
    event = AuditEvent.objects.get(
        action="workspace.state_lock_released", object_id=str(workspace.pk)
    )
    assert event.actor == admin_user and event.data["lock_id"] == stale.lock_id

    # Recovery as after any killed apply: take what it created under the state, then go on.
    if unmanaged:
        workspace_reconcile_import(
            actor=admin_user, workspace=workspace, item_ids=[i["id"] for i in unmanaged]
        )
    replan = execute(workspace, RunKind.PLAN, spec)
    assert replan.status == RunStatus.SUCCEEDED, replan.error
    reapply = execute(workspace, RunKind.APPLY, replan.spec, plan_run=replan)
    assert reapply.status == RunStatus.SUCCEEDED, reapply.error
    workspace.refresh_from_db()
    assert workspace.role_arn.endswith(f":role/irsa/demo--{workspace.microservice.name}")
    assert workspace_state_lock(workspace=workspace) is None
