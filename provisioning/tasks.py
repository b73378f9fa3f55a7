"""Celery tasks: ids in, JSON only; the work happens in services.

Terraform tasks use ``acks_late``: if a worker dies, the message is delivered again and the claim
(queued → running) turns the redelivery into a no-op. Terraform itself runs in a session of its
own and outlives a dead worker; the reaper (or a worker starting on the same host) adopts the run
and finishes it, and marks it interrupted only when Terraform is gone too. Nothing here retries
a failed apply: it is recorded and left for a human.
"""

from __future__ import annotations

import threading

from celery import shared_task
from celery.signals import worker_ready

from provisioning.notifications.tasks import send_email  # noqa: F401 - registers with the worker
from provisioning.services import runs
from provisioning.services.execution import run_execute

TERRAFORM_TASK = {"acks_late": True, "reject_on_worker_lost": False, "ignore_result": True}


@shared_task(name="provisioning.plan", **TERRAFORM_TASK)
def plan(run_id: int) -> None:
    run_execute(run_id=run_id)


@shared_task(name="provisioning.apply", **TERRAFORM_TASK)
def apply(run_id: int) -> None:
    run_execute(run_id=run_id)


@shared_task(name="provisioning.destroy", **TERRAFORM_TASK)
def destroy(run_id: int) -> None:
    run_execute(run_id=run_id)


@shared_task(name="provisioning.reap_interrupted_runs", ignore_result=True)
def reap_interrupted_runs() -> list[int]:
    return runs.runs_reap_interrupted()


@shared_task(name="provisioning.dispatch_queued_runs", ignore_result=True)
def dispatch_queued_runs() -> list[int]:
    return runs.runs_dispatch_queued()


@shared_task(
    name="provisioning.purge_idempotency_records",
    ignore_result=True,
    time_limit=600,
    soft_time_limit=540,
)
def purge_idempotency_records() -> int:
    from provisioning.services.idempotency import idempotency_records_purge

    return idempotency_records_purge()


@shared_task(name="provisioning.check_drift", ignore_result=True)
def check_drift() -> list[int]:
    return runs.workspaces_check_drift()


# Verification and node role audits (provisioning.verification).

VERIFY_TASK = {"ignore_result": True, "time_limit": 900, "soft_time_limit": 840}


@shared_task(name="provisioning.verify_workspace", **VERIFY_TASK)
def verify_workspace(workspace_id: int, actor_id: int | None = None) -> str:
    from django.contrib.auth import get_user_model

    from provisioning.models import Workspace
    from provisioning.verification.services import workspace_verify

    workspace = Workspace.objects.select_related("microservice", "cluster").get(pk=workspace_id)
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    workspace_verify(workspace=workspace, actor=actor)
    return Workspace.objects.get(pk=workspace_id).verification_status


@shared_task(
    name="provisioning.audit_node_roles", ignore_result=True, time_limit=600, soft_time_limit=540
)
def audit_node_roles() -> list[int]:
    from provisioning.verification.services import clusters_audit_node_roles

    return clusters_audit_node_roles()


@shared_task(
    name="provisioning.audit_node_role", ignore_result=True, time_limit=300, soft_time_limit=270
)
def audit_node_role(cluster_id: int) -> str:
    from provisioning.models import Cluster
    from provisioning.verification.services import cluster_audit_node_role

    return cluster_audit_node_role(cluster=Cluster.objects.get(pk=cluster_id)).node_role_status


@shared_task(
    name="provisioning.purge_drift_runs", ignore_result=True, time_limit=600, soft_time_limit=540
)
def purge_drift_runs() -> int:
    return runs.drift_runs_purge()


@shared_task(name="provisioning.sweep_run_workdirs", ignore_result=True)
def sweep_run_workdirs() -> list[str]:
    return runs.runs_sweep_workdirs()


@shared_task(
    name="provisioning.reconcile_workspace", ignore_result=True, soft_time_limit=840, time_limit=900
)
def reconcile_workspace(workspace_id: int) -> dict:
    from provisioning.services.reconcile import workspace_reconcile

    return workspace_reconcile(workspace_id=workspace_id)


@shared_task(
    name="provisioning.sweep_orphans", ignore_result=True, soft_time_limit=540, time_limit=600
)
def sweep_orphans() -> list[dict[str, str]]:
    from provisioning.services.orphans import orphans_sweep

    return orphans_sweep()


@worker_ready.connect
def adopt_on_worker_start(**_: object) -> None:
    """Adoption must not wait for beat: a restarted worker looks for its host's orphaned runs
    in a thread of its own (tailing an adopted apply takes as long as the apply)."""
    threading.Thread(
        target=runs.runs_adopt_on_worker_start, name="adopt-orphaned-runs", daemon=True
    ).start()
