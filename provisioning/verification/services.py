"""Verification and node role audits as services: run the proof, store it, audit and notify.

``verification_after_apply`` is the one hook the apply run calls; it never raises, because a
verification that cannot run or fails does not undo an apply: it is recorded on the workspace,
audited and sent to the requester and security.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from provisioning.aws import AccountSession, session_for_cluster
from provisioning.iam.spec import WorkspaceSpec, parse_workspace_spec
from provisioning.models import (
    ACTIVE_RUN_STATUSES,
    Cluster,
    NodeRoleStatus,
    Run,
    RunKind,
    RunStatus,
    VerificationStatus,
    Workspace,
    WorkspaceStatus,
)
from provisioning.services.audit import audit_record
from provisioning.services.runs import RunConflict, run_set_step

logger = logging.getLogger(__name__)
# Bounds the probes per verification whatever the account's size (owners, newest first).
MAX_NEIGHBOUR_WORKSPACES = 5
VERIFIABLE = (WorkspaceStatus.APPLIED, WorkspaceStatus.DRIFTED)


def verification_after_apply(*, run: Run, aws: Callable[[], AccountSession] | None = None) -> None:
    """The apply run's "verify" step, when VERIFY_AFTER_APPLY is on and the apply kept the role.
    ``aws`` gives the cluster account's session when the caller made it ahead (during the apply)."""
    if not settings.VERIFY_AFTER_APPLY or (run.plan_run and run.plan_run.destroy_plan):
        return
    try:
        run_set_step(run_id=run.pk, step="verify")
        workspace = Workspace.objects.select_related("microservice", "cluster").get(
            pk=run.workspace_id
        )
        workspace_verify(workspace=workspace, spec_data=run.spec, run=run, aws=aws)
    except Exception:  # a verification problem must never fail the apply it follows
        logger.exception("verification after run %s could not run", run.pk)


def workspace_verify(
    *,
    workspace: Workspace,
    actor: Any = None,
    spec_data: dict[str, Any] | None = None,
    run: Run | None = None,
    aws: Callable[[], AccountSession] | None = None,
) -> dict[str, Any]:
    """Prove the workspace's access as applied; store, audit and (on failure) notify."""
    try:
        spec = parse_workspace_spec(spec_data or applied_spec(workspace))
        result = prove(workspace=workspace, spec=spec, aws=aws)
        status = VerificationStatus.FAILED if result["failed"] else VerificationStatus.VERIFIED
    except Exception as exc:  # recorded as "could not run", with the reason
        logger.exception("verification of workspace %s could not run", workspace.pk)
        result = {"mode": _mode(), "probes": [], "failed": [], "error": str(exc)[:500]}
        status = VerificationStatus.ERROR
    return _record(workspace, result, status, actor=actor, run=run)


def _mode() -> str:
    return "live" if settings.IRSA_TOKEN_MINT_URL else "simulated"


def prove(
    *, workspace: Workspace, spec: WorkspaceSpec, aws: Callable[[], AccountSession] | None = None
) -> dict[str, Any]:
    from provisioning.analysis.matrix import access_matrix
    from provisioning.iam.policies import render_policies

    if not workspace.role_arn:
        raise ValueError("The workspace has no applied role to verify.")
    policies = render_policies(spec, key_arn=workspace.kms_key_arn)
    rows = access_matrix(spec, policies, neighbours=neighbours_of(workspace)).rows
    # The reads and clean-up of the proof happen in the cluster's account, as its runs do.
    aws = aws() if aws is not None else session_for_cluster(workspace.cluster, purpose="verify")
    if settings.IRSA_TOKEN_MINT_URL:
        from provisioning.verification.live import verify_live

        return verify_live(
            spec=spec,
            role_arn=workspace.role_arn,
            rows=rows,
            mint_url=settings.IRSA_TOKEN_MINT_URL,
            endpoint_url=settings.AWS_ENDPOINT_URL,
            aws=aws,
        )
    from provisioning.verification.simulate import verify_simulated

    return verify_simulated(spec=spec, role_arn=workspace.role_arn, rows=rows, aws=aws)


def neighbours_of(workspace: Workspace) -> list[Any]:
    """The reviewer's neighbours (other services' live tables, buckets and keys in the account),
    bounded to the newest few owners so a verification's probes do not grow with the account."""
    from provisioning.selectors.review import workspace_neighbours

    found = workspace_neighbours(workspace=workspace)
    owners = list(dict.fromkeys(n.owner for n in reversed(found)))[:MAX_NEIGHBOUR_WORKSPACES]
    return [n for n in found if n.owner in owners]


def applied_spec(workspace: Workspace) -> dict[str, Any]:
    last = (
        workspace.runs.filter(kind=RunKind.APPLY, status=RunStatus.SUCCEEDED)
        .order_by("-finished_at")
        .first()
    )
    if last is None:
        raise ValueError("The workspace has no successful apply to verify.")
    return last.spec


def _record(
    workspace: Workspace,
    result: dict[str, Any],
    status: str,
    *,
    actor: Any,
    run: Run | None,
) -> dict[str, Any]:
    with transaction.atomic():
        Workspace.objects.filter(pk=workspace.pk).update(
            verification=result, verification_status=status, verified_at=timezone.now()
        )
        failing = [r for r in result.get("probes", []) if not r.get("ok")]
        data = {"status": status, "mode": result.get("mode"), "run": run.pk if run else None}
        if status == VerificationStatus.VERIFIED:
            audit_record(actor=actor, action="workspace.verified", obj=workspace, data=data)
        elif status == VerificationStatus.FAILED:
            data["failed_probes"] = failing[:50]
            audit_record(
                actor=actor, action="workspace.verification_failed", obj=workspace, data=data
            )
            from provisioning.notifications.email import notify_verification_failed

            notify_verification_failed(workspace=workspace, failing=failing, run=run)
        else:
            data["error"] = result.get("error", "")
            audit_record(
                actor=actor, action="workspace.verification_error", obj=workspace, data=data
            )
    return result


def workspace_request_verification(*, actor: Any, workspace: Workspace) -> None:
    """Re-verify on demand, in a worker; refused while a run is changing the workspace."""
    from provisioning import tasks

    if workspace.status not in VERIFIABLE or not workspace.role_arn:
        raise RunConflict(f"Workspace {workspace} is not applied; there is nothing to verify yet.")
    if workspace.runs.filter(status__in=ACTIVE_RUN_STATUSES).exists():
        raise RunConflict(f"Workspace {workspace} has a run in progress; verify once it finishes.")
    audit_record(actor=actor, action="workspace.verification_requested", obj=workspace)
    actor_id = actor.pk if getattr(actor, "pk", None) else None
    transaction.on_commit(lambda: tasks.verify_workspace.delay(workspace.pk, actor_id))


def cluster_audit_node_role(*, cluster: Cluster, actor: Any = None) -> Cluster:
    """Audit the cluster's node role; store it; audit the change when the result differs."""
    from provisioning.verification.node_role import audit_node_role

    if not cluster.node_role_arn:
        result = {"error": "The cluster has no node role ARN to audit.", "flagged": []}
        status = NodeRoleStatus.UNKNOWN
    else:
        try:
            aws = session_for_cluster(cluster, purpose="audit")
            result = audit_node_role(role_arn=cluster.node_role_arn, aws=aws)
            status = NodeRoleStatus(result["status"])
        except Exception as exc:  # recorded as an audit that failed
            logger.exception("node role audit of cluster %s failed", cluster.pk)
            result = {"error": str(exc)[:500], "flagged": []}
            status = NodeRoleStatus.ERROR
    before = (cluster.node_role_status, cluster.node_role_audit.get("flagged"))
    with transaction.atomic():
        Cluster.objects.filter(pk=cluster.pk).update(
            node_role_status=status, node_role_audit=result, node_role_audited_at=timezone.now()
        )
        if before != (status, result.get("flagged")):
            audit_record(
                actor=actor,
                action="cluster.node_role_audit_changed",
                obj=cluster,
                data={"from": before[0], "to": status, "flagged": result.get("flagged", [])},
            )
    cluster.refresh_from_db()
    return cluster


def clusters_audit_node_roles() -> list[int]:
    return [cluster_audit_node_role(cluster=c).pk for c in Cluster.objects.all()]


def cluster_request_node_role_audit(*, actor: Any, cluster: Cluster) -> None:
    """Audit one cluster's node role now, in a worker."""
    from provisioning import tasks

    audit_record(actor=actor, action="cluster.node_role_audit_requested", obj=cluster)
    transaction.on_commit(lambda: tasks.audit_node_role.delay(cluster.pk))
