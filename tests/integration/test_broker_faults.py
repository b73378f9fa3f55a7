"""Broker outages under real work: Redis dies (`SHUTDOWN NOSAVE`) while a worker runs a real
Terraform plan against the sandbox, with the pg backend, and comes back 30 s later.

The worker runs two pool processes, as `make run` and compose do: with a slot free it has a BRPOP
outstanding while the plan's message is unacknowledged, which is what made kombu's Redis transport
crash the worker before `ack_emulation` was turned off (portal/settings.py). Beat runs as its own
process, as in production, and its dispatcher sends the run that was enqueued during the outage.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from provisioning.models import ChangeKind, ChangeRequest, ChangeStatus, Run, RunStatus
from provisioning.services import runs
from provisioning.services.changes import change_request_create, change_request_submit
from sandbox.celery_worker import ROOT, CeleryWorker
from tests.factories import MicroserviceFactory
from tests.integration.conftest import (
    REFERENCE_RESOURCES,
    make_demo_cluster,
    wait_for_change_status,
)
from tests.integration.test_celery_runs import broker, worker_env  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
OUTAGE_SECONDS = 30


@pytest.fixture(scope="module")
def busy_worker(worker_env, tmp_path_factory):  # noqa: F811
    env = {**worker_env, "RUN_REDISPATCH_AFTER": "5"}
    log = tmp_path_factory.mktemp("busy-worker") / "worker.log"
    running = CeleryWorker(env=env, log=log, concurrency=2)
    yield running
    running.stop()


@pytest.fixture
def beat(worker_env, tmp_path):  # noqa: F811
    """`celery -A portal beat` on its own, its schedule in a scratch directory."""
    log = tmp_path / "beat.log"
    argv = [sys.executable, "-m", "celery", "-A", "portal", "beat", "--loglevel", "INFO"]
    with log.open("w") as handle:
        process = subprocess.Popen(
            [*argv, "--schedule", str(tmp_path / "celerybeat-schedule")],
            cwd=ROOT,
            env=worker_env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    yield process, log
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def demo_cluster(demo_aws):
    return make_demo_cluster(demo_aws)


def submit_change(*, actor, team, name: str) -> tuple[ChangeRequest, Run]:
    """The developer proposes a new service on the demo cluster and submits it for planning."""
    service = MicroserviceFactory(name=name, team=team, namespace="shop", service_accounts=[name])
    change = change_request_create(
        actor=actor,
        microservice=service,
        kind=ChangeKind.CREATE,
        spec={
            "namespace": "shop",
            "service_accounts": [name],
            "resources": REFERENCE_RESOURCES,
            "clusters": ["demo"],
        },
        justification="orders need their table and bucket",
    )
    [plan] = change_request_submit(actor=actor, change_request=change)
    return change, plan


def wait_for_step(run_id: int, step: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while (run := Run.objects.get(pk=run_id)).current_step != step:
        assert run.status in (RunStatus.QUEUED, RunStatus.RUNNING), (run.status, run.error)
        assert time.monotonic() < deadline, f"run {run_id} never reached {step!r}"
        time.sleep(0.1)


def watch(processes: dict[str, subprocess.Popen], seconds: float) -> list[str]:
    """Watch the processes for `seconds` (Redis is down meanwhile); which exited, if any."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        exited = [
            f"{n} exited ({p.returncode})" for n, p in processes.items() if p.poll() is not None
        ]
        if exited:
            return exited
        time.sleep(0.5)
    return []


def test_a_plan_survives_a_broker_outage_and_a_run_queued_meanwhile_is_dispatched(
    broker,  # noqa: F811
    busy_worker,
    beat,
    demo_cluster,
    developer,
    team,
    unique_name,
    aws,
):
    beat_process, beat_log = beat
    change, plan = submit_change(actor=developer, team=team, name=unique_name)
    wait_for_step(plan.pk, "plan")

    broker.shutdown_nosave()
    try:
        # The web request during the outage: the run is recorded, its publish fails fast.
        late_change, late_plan = submit_change(actor=developer, team=team, name=f"{unique_name}b")
        assert Run.objects.get(pk=late_plan.pk).status == RunStatus.QUEUED
        exited = watch({"worker": busy_worker.process, "beat": beat_process}, OUTAGE_SECONDS)
    finally:
        broker.start()
    log = busy_worker.log.read_text()
    assert not exited, f"{exited}\n{log[-4000:]}\n{beat_log.read_text()[-2000:]}"

    finished = runs.wait_for_run(plan.pk, timeout=240)
    assert finished.status == RunStatus.SUCCEEDED, finished.error
    assert finished.has_changes and finished.plan_sha256 and bytes(finished.plan_file)
    assert "Plan:" in finished.log, finished.log[-2000:]
    wait_for_change_status(change, ChangeStatus.PLANNED)

    # Redis came back empty (NOSAVE): only beat's dispatcher (every 30 s) can send the late run.
    late = runs.wait_for_run(late_plan.pk, timeout=180)
    assert late.status == RunStatus.SUCCEEDED, late.error
    wait_for_change_status(late_change, ChangeStatus.PLANNED)
    assert "dispatch_queued_runs" in busy_worker.log.read_text()

    log = busy_worker.log.read_text()
    assert busy_worker.process.poll() is None and beat_process.poll() is None, log[-4000:]
    assert "Unrecoverable error" not in log, log[-4000:]
    # Plans only: the sandbox holds nothing for either service, as the portal's inventory says.
    roles = aws("iam").list_roles(PathPrefix="/irsa/")["Roles"]
    assert not [r for r in roles if unique_name in r["RoleName"]]
    for run in (finished, late):
        assert run.workspace.role_arn == "" and not run.workspace.resource_arns
