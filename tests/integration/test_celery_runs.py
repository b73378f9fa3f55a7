"""Terraform runs through real Celery workers on a real Redis, against the sandbox and PostgreSQL.

Each module run gets a private redis-server (so the broker can be stopped without touching the
machine's Redis) and worker processes started with `celery -A portal worker`.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection

from portal.celery import app as celery_app
from provisioning import tasks
from provisioning.models import AuditEvent, Run, RunKind, RunStatus, Workspace, WorkspaceStatus
from provisioning.services import runs
from provisioning.services.runs import RunConflict, run_enqueue, wait_for_run
from sandbox.celery_worker import CeleryWorker
from sandbox.redis import RedisServer
from tests.factories import MicroserviceFactory, TeamFactory
from tests.integration.conftest import REFERENCE_RESOURCES, make_demo_cluster, workspace_spec

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
PLANTED_AWS_SECRET = "planted-aws-secret-5f1c9e"
PLANTED_DB_PASSWORD = "planted-db-password-77ab"


def point_celery_at(url: str) -> None:
    """Make this test process publish to `url`, dropping connections to any previous broker."""
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(scope="module")
def broker():
    server = RedisServer().start()
    previous = celery_app.conf.broker_url
    point_celery_at(server.url)
    yield server
    server.stop()
    point_celery_at(previous)


@pytest.fixture(scope="module")
def worker_env(broker, sandbox, terraform_root, django_db_setup, django_db_blocker):
    db = connection.settings_dict
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "SECRET_KEY": "worker-test-key",
        # Trust auth ignores the password, so it can be planted without breaking the connection.
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}:{PLANTED_DB_PASSWORD}@"
        f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": broker.url,
        "AWS_ENDPOINT_URL": sandbox.endpoint_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": PLANTED_AWS_SECRET,
        "TERRAFORM_WORK_DIR": str(terraform_root),
        "TERRAFORM_BACKEND": "pg",
        "TERRAFORM_LOCK_TIMEOUT": "2s",
    }


@pytest.fixture(scope="module")
def worker(worker_env, tmp_path_factory):
    running = CeleryWorker(env=worker_env, log=tmp_path_factory.mktemp("worker") / "worker.log")
    yield running
    running.stop()


@pytest.fixture
def workspace(demo_aws, unique_name):
    cluster = make_demo_cluster(demo_aws)
    service = MicroserviceFactory(name=unique_name, team=TeamFactory())
    return Workspace.objects.create(microservice=service, cluster=cluster)


def spec_for(demo_aws, workspace: Workspace, resources=REFERENCE_RESOURCES) -> dict:
    spec = workspace_spec(demo_aws, workspace.microservice.name, resources)
    return {
        "microservice": spec.microservice,
        "namespace": spec.namespace,
        "service_accounts": list(spec.service_accounts),
        "resources": resources,
        "cluster": {
            "name": "demo",
            "account_id": demo_aws.account_id,
            "region": demo_aws.region,
            "oidc_provider_arn": demo_aws.oidc_provider_arn,
        },
    }


def watch_log_while_running(run_id: int) -> list[str]:
    """Snapshots of the stored log taken while the run is still running."""
    seen: list[str] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run = Run.objects.get(pk=run_id)
        if run.status == RunStatus.RUNNING and run.log:
            seen.append(run.log)
        if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return seen
        time.sleep(0.2)
    raise TimeoutError(f"run {run_id} did not finish")


def test_plan_apply_change_destroy_through_the_worker(worker, workspace, demo_aws):
    plan = run_enqueue(workspace=workspace, kind=RunKind.PLAN, spec=spec_for(demo_aws, workspace))
    live_logs = watch_log_while_running(plan.pk)
    plan.refresh_from_db()
    assert plan.status == RunStatus.SUCCEEDED, plan.error
    assert live_logs and "terraform init" in live_logs[0], "the log was not readable mid-run"
    assert plan.has_changes and plan.plan_sha256 and bytes(plan.plan_file)
    assert any("aws_iam_role.this" in a for a in plan.plan_summary["add"])
    identity = [c for c in plan.plan_summary["policy_changes"] if "aws_iam_policy" in c["address"]]
    assert identity and identity[0]["actions"] == ["create"]

    apply = run_enqueue(workspace=workspace, kind=RunKind.APPLY, spec=plan.spec, plan_run=plan)
    apply = wait_for_run(apply.pk)
    assert apply.status == RunStatus.SUCCEEDED, apply.error
    workspace.refresh_from_db()
    assert workspace.status == WorkspaceStatus.APPLIED
    assert workspace.role_arn.endswith(f":role/irsa/demo--{workspace.microservice.name}")
    assert workspace.kms_key_arn.startswith("arn:aws:kms:us-east-1:")
    assert set(workspace.resource_arns) == {"dynamodb_table/orders", "s3_bucket/invoices"}

    grown = [*REFERENCE_RESOURCES, {"kind": "s3_bucket", "name": "archive", "access": "read"}]
    change = wait_for_run(
        run_enqueue(
            workspace=workspace, kind=RunKind.PLAN, spec=spec_for(demo_aws, workspace, grown)
        ).pk
    )
    assert change.status == RunStatus.SUCCEEDED, change.error
    assert all('s3_bucket["archive"]' in a for a in change.plan_summary["add"])
    assert change.plan_summary["change"] == ["module.irsa.aws_iam_policy.this"]

    destroy = wait_for_run(
        run_enqueue(workspace=workspace, kind=RunKind.DESTROY, spec=plan.spec).pk
    )
    assert destroy.status == RunStatus.SUCCEEDED, destroy.error
    workspace.refresh_from_db()
    assert workspace.status == WorkspaceStatus.DESTROYED and workspace.role_arn == ""
    for run in (plan, apply, change, destroy):
        actions = set(
            AuditEvent.objects.filter(
                object_id=str(run.pk), object_type="provisioning.run"
            ).values_list("action", flat=True)
        )
        assert {"run.queued", "run.started", "run.succeeded"} <= actions


def test_the_same_apply_delivered_twice_applies_once(worker, workspace, demo_aws):
    plan = wait_for_run(
        run_enqueue(workspace=workspace, kind=RunKind.PLAN, spec=spec_for(demo_aws, workspace)).pk
    )
    apply = run_enqueue(workspace=workspace, kind=RunKind.APPLY, spec=plan.spec, plan_run=plan)
    tasks.apply.delay(apply.pk)  # a redelivery of the same message
    tasks.apply.delay(apply.pk)
    apply = wait_for_run(apply.pk)
    assert apply.status == RunStatus.SUCCEEDED, apply.error
    time.sleep(2)  # let the duplicates reach the worker and be ignored
    started = AuditEvent.objects.filter(action="run.started", object_id=str(apply.pk))
    assert started.count() == 1
    assert Run.objects.get(pk=apply.pk).log.count("$ terraform apply") == 1
    wait_for_run(run_enqueue(workspace=workspace, kind=RunKind.DESTROY, spec=plan.spec).pk)


def test_two_applies_racing_for_one_workspace(workspace, demo_aws):
    """No worker needed: the database refuses the second active run whoever asks first."""
    results: list[object] = []
    barrier = threading.Barrier(2)

    def enqueue() -> None:
        from django.db import connection

        barrier.wait()
        try:
            results.append(run_enqueue(workspace=workspace, kind=RunKind.APPLY, spec={}))
        except RunConflict as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=enqueue) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(r).__name__ for r in results) == ["Run", "RunConflict"]
    assert Run.objects.filter(workspace=workspace).count() == 1
    Run.objects.filter(workspace=workspace).update(status=RunStatus.CANCELLED)


def test_a_killed_workers_run_ends_interrupted(worker_env, workspace, demo_aws, tmp_path):
    # The run goes to a queue only the doomed worker reads, so no healthy worker can take it.
    doomed = CeleryWorker(env=worker_env, log=tmp_path / "doomed.log", queue="doomed")
    try:
        run = Run.objects.create(
            workspace=workspace, kind=RunKind.PLAN, spec=spec_for(demo_aws, workspace)
        )
        tasks.plan.apply_async((run.pk,), queue="doomed")
        deadline = time.monotonic() + 120
        while Run.objects.get(pk=run.pk).status != RunStatus.RUNNING:
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.1)
        doomed.kill()
    finally:
        doomed.stop()
    time.sleep(3)
    reaped = runs.runs_reap_interrupted(heartbeat_timeout=timedelta(seconds=2))
    assert reaped == [run.pk], (tmp_path / "doomed.log").read_text()[-2500:]
    run.refresh_from_db()
    assert run.status == RunStatus.INTERRUPTED
    assert "marked interrupted" in run.error and "never forces it" in run.error


def test_a_run_queued_while_the_broker_is_down_completes_after_it_returns(
    worker, broker, workspace, demo_aws
):
    # First a round trip, so the broker goes down under a worker in its steady state.
    seen = worker.log.read_text().count("reap_interrupted_runs")
    tasks.reap_interrupted_runs.delay()
    deadline = time.monotonic() + 30
    while worker.log.read_text().count("reap_interrupted_runs") <= seen:
        assert time.monotonic() < deadline, "the worker did not answer a round trip"
        time.sleep(0.2)
    broker.stop()
    try:
        run = run_enqueue(
            workspace=workspace, kind=RunKind.PLAN, spec=spec_for(demo_aws, workspace)
        )
        assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED
    finally:
        broker.start()
    # The dispatcher (celery beat runs it every 30 s) re-sends what is still queued.
    deadline = time.monotonic() + 60
    while Run.objects.get(pk=run.pk).status == RunStatus.QUEUED:
        assert time.monotonic() < deadline, "the run was never dispatched"
        runs.runs_dispatch_queued(older_than=timedelta(0))
        time.sleep(1)
    run = wait_for_run(run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error


def test_planted_secrets_never_reach_a_log_or_a_file(worker, workspace, demo_aws, terraform_root):
    plan = wait_for_run(
        run_enqueue(workspace=workspace, kind=RunKind.PLAN, spec=spec_for(demo_aws, workspace)).pk
    )
    apply = wait_for_run(
        run_enqueue(workspace=workspace, kind=RunKind.APPLY, spec=plan.spec, plan_run=plan).pk
    )
    assert apply.status == RunStatus.SUCCEEDED, apply.error
    for secret in (PLANTED_AWS_SECRET, PLANTED_DB_PASSWORD):
        for run in Run.objects.filter(workspace=workspace):
            stored = f"{run.log}{run.error}{run.plan_summary}{run.outputs}{run.spec}"
            assert secret not in stored
            assert secret.encode() not in bytes(run.plan_file or b"")
        for path in terraform_root.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 50_000_000:
                assert secret.encode() not in path.read_bytes(), path
    wait_for_run(run_enqueue(workspace=workspace, kind=RunKind.DESTROY, spec=plan.spec).pk)
