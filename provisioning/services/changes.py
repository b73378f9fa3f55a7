"""The change-request lifecycle: draft → submitted → planned → approved | rejected → applying →
applied | failed; cancel while not applying. Approval binds to the exact plans it was shown."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from provisioning.iam.spec import SpecError, parse_workspace_spec
from provisioning.models import (
    OPEN_CHANGE_STATUSES,
    ChangeKind,
    ChangeRequest,
    ChangeStatus,
    Cluster,
    Decision,
    Microservice,
    Resource,
    Review,
    Run,
    RunKind,
    RunStatus,
    Workspace,
    WorkspaceStatus,
)
from provisioning.notifications.changes import notify_change_request_status
from provisioning.notifications.webhooks import webhook_change_request_status
from provisioning.permissions import can_edit_microservice, can_review
from provisioning.selectors import (
    change_request_latest_plans,
    change_request_review,
    namespace_conflicts,
    plan_run_analysis,
)
from provisioning.selectors.data_loss import change_request_data_loss, data_loss_waiting_reason
from provisioning.selectors.names import physical_name_conflicts
from provisioning.services.audit import audit_record
from provisioning.services.microservices import free_text_errors
from provisioning.services.names import physical_names_claim
from provisioning.services.runs import run_enqueue
from provisioning.specs import build_workspace_spec, workspace_name_scheme, workspace_spec_data

logger = logging.getLogger(__name__)
NO_NEW_ACCESS = "no_new_access"
_CONFIRMATION_FIELDS = [
    "data_loss_confirmed_by",
    "data_loss_confirmed_at",
    "data_loss_confirmed_plans",
]


class TransitionError(Exception):
    """The change request is not in a state that allows this; the message says which it is in."""


class BlockingFindingsError(TransitionError):
    """The analysis of the plans shown has a high finding: no one may approve them as they are."""

    def __init__(self, message: str, findings: list[dict[str, Any]]):
        super().__init__(message)
        self.findings = findings


def _move(change: ChangeRequest, *, allowed: tuple[str, ...], to: str) -> None:
    """One conditional UPDATE per transition: two racing callers cannot both move it."""
    if not _move_if(change, allowed=allowed, to=to):
        change.refresh_from_db()
        raise TransitionError(
            f"Change request #{change.pk} is {change.get_status_display()}; "
            f"it cannot become {ChangeStatus(to).label}."
        )
    notify_change_request_status(change=change, status=to)


def _move_if(change: ChangeRequest, *, allowed: tuple[str, ...], to: str) -> bool:
    """The conditional UPDATE and the webhook deliveries it causes, in one transaction (the
    outbox: the event cannot be lost once the move committed); False when it was not in
    ``allowed``."""
    with transaction.atomic():
        moved = ChangeRequest.objects.filter(pk=change.pk, status__in=allowed).update(status=to)
        if moved:
            change.status = to
            webhook_change_request_status(change=change, status=to)
    return bool(moved)


def change_request_create(
    *, actor: Any, microservice: Microservice, kind: str, spec: dict[str, Any], justification: str
) -> ChangeRequest:
    if not can_edit_microservice(actor, microservice):
        raise PermissionDenied("Only the owning team can change this microservice.")
    if microservice.decommissioned_at is not None:
        raise TransitionError(
            f"Microservice {microservice.name} was decommissioned; register a new one instead."
        )
    open_change = microservice.change_requests.filter(status__in=OPEN_CHANGE_STATUSES).first()
    if open_change is not None:
        raise TransitionError(
            f"Microservice {microservice.name} already has an open change "
            f"request #{open_change.pk} ({open_change.get_status_display()}); "
            "cancel it or let it finish first."
        )
    _check_spec_shape(spec)
    if not justification.strip():
        raise SpecError({"justification": ["Say why the service needs this change."]})
    if text_errors := free_text_errors(justification=justification):
        raise SpecError(text_errors)
    clusters = list(Cluster.objects.filter(name__in=spec.get("clusters", [])))
    if kind != ChangeKind.DECOMMISSION:
        _validate_for_clusters(microservice, spec, clusters)
    try:
        with transaction.atomic():
            change = ChangeRequest.objects.create(
                microservice=microservice,
                kind=kind,
                spec=spec,
                justification=justification,
                created_by=actor,
            )
    except IntegrityError:  # a concurrent proposal won the one-open-request constraint
        raise TransitionError(
            f"Microservice {microservice.name} already has an open change request; "
            "cancel it or let it finish first."
        ) from None
    audit_record(actor=actor, action="change_request.created", obj=change, data={"kind": kind})
    return change


def _check_spec_shape(spec: Any) -> None:
    """The proposal's own fields; each workspace spec is then validated per cluster."""
    errors: dict[str, list[str]] = {}
    if not isinstance(spec, dict):
        raise SpecError(
            {
                "spec": [
                    "The spec must be an object {namespace, service_accounts, resources, clusters}."
                ]
            }
        )
    if not isinstance(spec.get("namespace"), str):
        errors["namespace"] = ["'namespace' is required."]
    for key in ("service_accounts", "resources", "clusters"):
        if not isinstance(spec.get(key), list):
            errors[key] = [f"'{key}' must be a list."]
    if isinstance(spec.get("resources"), list) and not all(
        isinstance(r, dict) for r in spec["resources"]
    ):
        errors["resources"] = ["Each resource must be an object {kind, name, access}."]
    if errors:
        raise SpecError(errors)


def _validate_for_clusters(
    microservice: Microservice, spec: dict[str, Any], clusters: list[Cluster]
) -> None:
    known = {c.name for c in clusters}
    missing = [n for n in spec.get("clusters", []) if n not in known]
    if missing or not clusters:
        raise SpecError(
            {
                "clusters": [
                    f"Unknown cluster(s): {', '.join(missing)}."
                    if missing
                    else "Choose at least one cluster to deploy to."
                ]
            }
        )
    for cluster in clusters:
        workspace_spec = build_workspace_spec(
            microservice=microservice.name,
            namespace=spec["namespace"],
            service_accounts=spec["service_accounts"],
            resources=spec["resources"],
            cluster=cluster,
            name_scheme=workspace_name_scheme(microservice=microservice, cluster=cluster),
        )
        taken = physical_name_conflicts(spec=workspace_spec, microservice=microservice)
        if taken:
            raise SpecError(taken)
    conflicts = namespace_conflicts(
        team=microservice.team,
        microservice_name=microservice.name,
        namespace=spec["namespace"],
        service_accounts=spec["service_accounts"],
        clusters=clusters,
    )
    if conflicts:
        raise SpecError(conflicts)


def change_request_submit(*, actor: Any, change_request: ChangeRequest) -> list[Run]:
    """Enqueue one plan per affected workspace (after the transaction commits)."""
    if not can_edit_microservice(actor, change_request.microservice):
        raise PermissionDenied("Only the owning team can submit this change request.")
    with transaction.atomic():
        _move(change_request, allowed=(ChangeStatus.DRAFT,), to=ChangeStatus.SUBMITTED)
        planned = _enqueue_plans(change_request, actor)
        audit_record(
            actor=actor,
            action="change_request.submitted",
            obj=change_request,
            data={"runs": [r.pk for r in planned]},
        )
    return planned


def _enqueue_plans(change: ChangeRequest, actor: Any) -> list[Run]:
    microservice = change.microservice
    targets = set() if change.kind == ChangeKind.DECOMMISSION else set(change.spec["clusters"])
    # New plans, new counts: a confirmation given for the previous plans does not carry over.
    ChangeRequest.objects.filter(pk=change.pk).update(
        data_loss_confirmed_by=None, data_loss_confirmed_at=None, data_loss_confirmed_plans={}
    )
    runs = []
    for cluster in Cluster.objects.filter(name__in=targets):
        workspace, _ = Workspace.objects.get_or_create(microservice=microservice, cluster=cluster)
        data = workspace_spec_data(
            microservice=microservice.name,
            namespace=change.spec["namespace"],
            service_accounts=change.spec["service_accounts"],
            resources=change.spec["resources"],
            cluster=cluster,
            name_scheme=workspace.name_scheme,
        )
        physical_names_claim(workspace=workspace, spec=parse_workspace_spec(data))
        runs.append(
            run_enqueue(
                workspace=workspace,
                kind=RunKind.PLAN,
                spec=data,
                actor=actor,
                change_request=change,
            )
        )
    live = microservice.workspaces.exclude(
        status__in=(WorkspaceStatus.DESTROYED, WorkspaceStatus.NEW)
    )
    for workspace in live.exclude(cluster__name__in=targets):
        run = run_enqueue(
            workspace=workspace,
            kind=RunKind.PLAN,
            actor=actor,
            spec=_destroy_spec(workspace),
            change_request=change,
        )
        Run.objects.filter(pk=run.pk).update(destroy_plan=True)
        runs.append(run)
    return runs


def _destroy_spec(workspace: Workspace) -> dict[str, Any]:
    """The spec a destroy plan renders with: the last successful apply's, else (the first apply
    failed part-way) the last apply attempt's, so what it did create is destroyed too. With an
    empty spec the root module would not even declare the role, key and alias it must delete."""
    applies = workspace.runs.filter(kind=RunKind.APPLY).exclude(spec={})
    last = applies.filter(status=RunStatus.SUCCEEDED).last() or applies.last()
    if last is None:
        last = workspace.runs.filter(kind=RunKind.PLAN, destroy_plan=False).exclude(spec={}).last()
    return last.spec if last else {}


def _latest_plans(change: ChangeRequest) -> list[Run]:
    return change_request_latest_plans(change_request=change)


def change_request_run_finished(*, change_request_id: int, stale: bool = False) -> None:
    change = ChangeRequest.objects.get(pk=change_request_id)
    if change.status == ChangeStatus.SUBMITTED:
        _after_plans(change)
    elif change.status == ChangeStatus.APPLYING:
        _after_applies(change, stale=stale)


def _after_plans(change: ChangeRequest) -> None:
    plans = _latest_plans(change)
    if any(p.status in (RunStatus.QUEUED, RunStatus.RUNNING) for p in plans):
        return
    if all(p.status == RunStatus.SUCCEEDED for p in plans):
        for plan in plans:
            # Stored before the request becomes reviewable, so every reviewer (and the
            # approval's blocking check) reads the same analysis of the same plan.
            Run.objects.filter(pk=plan.pk).update(analysis=_analyse(plan))
        if _move_if(change, allowed=(ChangeStatus.SUBMITTED,), to=ChangeStatus.PLANNED):
            _auto_approve_if_no_new_access(change)
            # After the auto-approval, so reviewers are asked only when a human must decide.
            notify_change_request_status(change=change, status=ChangeStatus.PLANNED)
        return
    # A plan failed: back to the author, who fixes the spec (or asks an admin) and resubmits.
    if _move_if(change, allowed=(ChangeStatus.SUBMITTED,), to=ChangeStatus.DRAFT):
        notify_change_request_status(change=change, status="plan_failed")
    audit_record(actor=None, action="change_request.plan_failed", obj=change)


def _analyse(plan: Run) -> dict[str, Any]:
    try:
        return plan_run_analysis(run=plan)
    except Exception:  # the analysis must never strand a request in "submitted"
        logger.exception("analysis of plan run %s failed", plan.pk)
        return {"error": "The analysis of this plan failed; the worker log has the details."}


def _auto_approve_if_no_new_access(change: ChangeRequest) -> None:
    """AUTO_APPROVE_NO_NEW_ACCESS: removals only, nothing blocking, never a decommission."""
    if not settings.AUTO_APPROVE_NO_NEW_ACCESS or change.kind == ChangeKind.DECOMMISSION:
        return
    if change_request_data_loss(change_request=change)["required"]:
        return  # deleting data is a human decision, after the requester's confirmation
    review = change_request_review(change_request=change)
    summary = review["summary"]
    if summary is None or summary["classification"] != NO_NEW_ACCESS or summary["blocking"]:
        return
    reason = (
        f"Approved automatically: {summary['classification_label']} and no blocking finding "
        "(AUTO_APPROVE_NO_NEW_ACCESS)."
    )
    shown = {str(w["run"]): w["plan_sha256"] for w in review["workspaces"]}
    try:
        _approve(change, actor=None, comment=reason, shown_plan_hashes=shown, automatic=True)
    except TransitionError as exc:  # cancelled or re-planned meanwhile: a human decides
        logger.info("no automatic approval of change request %s: %s", change.pk, exc)


def change_request_approve(
    *,
    actor: Any,
    change_request: ChangeRequest,
    comment: str = "",
    shown_plan_hashes: dict[str, str] | None = None,
) -> Review:
    """Approve exactly the plans shown; enqueue applies for the ones that change something.

    ``shown_plan_hashes`` (plan run id → sha256, as the reviewer saw them) is compared with the
    current plans inside the approval's transaction, so a re-plan in between is refused. Who may
    decide is checked first (403); whether the request can still be approved comes second (409),
    so the loser of two concurrent approvals learns the request's current state.
    """
    if not can_review(actor, change_request):
        raise PermissionDenied(
            "Only a security reviewer may approve a planned change request, and never their own."
        )
    if shown_plan_hashes is None:
        # Approval always binds to the plans the reviewer read; an unbound approval could
        # approve a plan that changed after the page (or the API response) was read.
        raise SpecError(
            {
                "plan_hashes": [
                    "Send the plan hashes you reviewed ({plan run id: plan_sha256}, as the change "
                    "request shows them); approval binds to exactly those plans."
                ]
            }
        )
    return _approve(
        change_request, actor=actor, comment=comment, shown_plan_hashes=shown_plan_hashes
    )


def _approve(
    change: ChangeRequest,
    *,
    actor: Any,
    comment: str,
    shown_plan_hashes: dict[str, str] | None,
    automatic: bool = False,
) -> Review:
    """The one approval path, for reviewers and for the automatic approval."""
    with transaction.atomic():
        _move(change, allowed=(ChangeStatus.PLANNED,), to=ChangeStatus.APPROVED)
        plans = _latest_plans(change)
        hashes = {str(p.pk): p.plan_sha256 for p in plans}
        shown = {str(k): v for k, v in (shown_plan_hashes or {}).items()}
        if shown_plan_hashes is not None and shown != hashes:
            raise TransitionError(
                f"The plans of change request #{change.pk} changed since they were "
                "shown; review the new plans before approving."
            )
        _refuse_blocking_findings(change)
        change.refresh_from_db(fields=_CONFIRMATION_FIELDS)  # confirmed since it was read?
        if reason := data_loss_waiting_reason(change_request=change):
            raise TransitionError(reason)
        review = Review.objects.create(
            change_request=change,
            reviewer=actor,
            automatic=automatic,
            decision=Decision.APPROVE,
            comment=comment,
            plan_hashes=hashes,
        )
        data: dict[str, Any] = {"plan_hashes": hashes}
        if automatic:
            data["reason"] = comment
        action = "change_request.auto_approved" if automatic else "change_request.approved"
        audit_record(actor=actor, action=action, obj=change, data=data)
        _enqueue_applies(change, plans, actor)
    return review


def _refuse_blocking_findings(change: ChangeRequest) -> None:
    summary = change_request_review(change_request=change)
    blocking = summary["blocking_findings"]
    if blocking:
        listed = "; ".join(
            f"{f['cluster']}: {f['rule']} at {f['location']}: {f['message']}" for f in blocking
        )
        raise BlockingFindingsError(
            f"Change request #{change.pk} has {len(blocking)} high finding(s) in its policies; "
            f"it cannot be approved until the spec (or the catalog) changes: {listed}",
            blocking,
        )


def _enqueue_applies(change: ChangeRequest, plans: list[Run], actor: Any) -> None:
    changing = [p for p in plans if p.has_changes]
    _move(
        change,
        allowed=(ChangeStatus.APPROVED,),
        to=ChangeStatus.APPLYING if changing else ChangeStatus.APPLIED,
    )
    for plan in changing:
        kind = RunKind.DESTROY if plan.destroy_plan else RunKind.APPLY
        run_enqueue(
            workspace=plan.workspace,
            kind=kind,
            spec=plan.spec,
            actor=actor,
            change_request=change,
            plan_run=plan,
        )
    if not changing:
        _record_live_spec(change)


def change_request_reject(*, actor: Any, change_request: ChangeRequest, comment: str) -> Review:
    if not can_review(actor, change_request):
        raise PermissionDenied(
            "Only a security reviewer may reject a planned change request, and never their own."
        )
    if not comment.strip():
        raise SpecError({"comment": ["Say what has to change for approval."]})
    with transaction.atomic():
        _move(change_request, allowed=(ChangeStatus.PLANNED,), to=ChangeStatus.REJECTED)
        review = Review.objects.create(
            change_request=change_request, reviewer=actor, decision=Decision.REJECT, comment=comment
        )
        audit_record(
            actor=actor,
            action="change_request.rejected",
            obj=change_request,
            data={"comment": comment},
        )
    return review


def change_request_cancel(*, actor: Any, change_request: ChangeRequest) -> None:
    if not can_edit_microservice(actor, change_request.microservice):
        raise PermissionDenied("Only the owning team can cancel this change request.")
    _move(
        change_request,
        to=ChangeStatus.CANCELLED,
        allowed=(
            ChangeStatus.DRAFT,
            ChangeStatus.SUBMITTED,
            ChangeStatus.PLANNED,
            ChangeStatus.APPROVED,
        ),
    )
    Run.objects.filter(change_request=change_request, status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED
    )
    audit_record(actor=actor, action="change_request.cancelled", obj=change_request)


def change_request_discard(*, actor: Any, change_request: ChangeRequest) -> None:
    """Failed → cancelled: the owner gives the change up instead of re-planning it. What the
    failed apply left in AWS stays in the workspace's inventory and reconciliation."""
    if not can_edit_microservice(actor, change_request.microservice):
        raise PermissionDenied("Only the owning team can discard this change request.")
    _move(change_request, allowed=(ChangeStatus.FAILED,), to=ChangeStatus.CANCELLED)
    audit_record(actor=actor, action="change_request.discarded", obj=change_request)


def _latest_applies(change: ChangeRequest) -> list[Run]:
    """The last apply of each workspace: after a re-plan, an earlier failed apply is history."""
    latest: dict[int, Run] = {}
    for run in change.runs.filter(kind__in=(RunKind.APPLY, RunKind.DESTROY)).order_by("pk"):
        latest[run.workspace_id] = run
    return list(latest.values())


def _after_applies(change: ChangeRequest, *, stale: bool) -> None:
    applies = _latest_applies(change)
    if any(r.status in (RunStatus.QUEUED, RunStatus.RUNNING) for r in applies):
        return
    if stale:
        # The state moved since the review: plan again; the new plans need a new review.
        with transaction.atomic():
            _move(change, allowed=(ChangeStatus.APPLYING,), to=ChangeStatus.SUBMITTED)
            _enqueue_plans(change, None)
        audit_record(actor=None, action="change_request.replanned_stale", obj=change)
        return
    if all(r.status == RunStatus.SUCCEEDED for r in applies):
        with transaction.atomic():
            _move(change, allowed=(ChangeStatus.APPLYING,), to=ChangeStatus.APPLIED)
            _record_live_spec(change)
        return
    if _move_if(change, allowed=(ChangeStatus.APPLYING,), to=ChangeStatus.FAILED):
        notify_change_request_status(change=change, status=ChangeStatus.FAILED)
    audit_record(actor=None, action="change_request.failed", obj=change)


def _record_live_spec(change: ChangeRequest) -> None:
    """The applied spec becomes the microservice's live inventory."""
    microservice = change.microservice
    microservice.resources.all().delete()
    if change.kind == ChangeKind.DECOMMISSION:
        microservice.decommissioned_at = change.updated_at
        microservice.save(update_fields=["decommissioned_at"])
        return
    microservice.namespace = change.spec["namespace"]
    microservice.service_accounts = change.spec["service_accounts"]
    microservice.save(update_fields=["namespace", "service_accounts"])
    Resource.objects.bulk_create(
        Resource(
            microservice=microservice,
            kind=r["kind"],
            name=r["name"],
            access=r["access"],
            settings=r.get("settings", {}),
        )
        for r in change.spec["resources"]
    )


def change_request_replan(*, actor: Any, change_request: ChangeRequest) -> list[Run]:
    """Failed → submitted with fresh plans: after a failed or interrupted apply the owner plans
    again against what the state now holds (see the workspace's reconciliation first); the new
    plans need a new review."""
    if not can_edit_microservice(actor, change_request.microservice):
        raise PermissionDenied("Only the owning team can re-plan this change request.")
    try:
        with transaction.atomic():
            _move(change_request, allowed=(ChangeStatus.FAILED,), to=ChangeStatus.SUBMITTED)
            planned = _enqueue_plans(change_request, actor)
            audit_record(
                actor=actor,
                action="change_request.replanned",
                obj=change_request,
                data={"runs": [r.pk for r in planned]},
            )
    except IntegrityError:  # another change request of the service was opened meanwhile
        raise TransitionError(
            f"Microservice {change_request.microservice.name} has another open change request; "
            "cancel it before re-planning this one."
        ) from None
    return planned
