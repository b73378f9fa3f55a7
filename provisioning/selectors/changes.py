"""Reads about change requests. A change request is visible exactly when its microservice is."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from provisioning.models import ChangeRequest, ChangeStatus, Run, RunKind, RunStatus
from provisioning.permissions import is_reviewer
from provisioning.selectors.microservices import microservice_list_for_user
from provisioning.terraform.diagnostics import failure_summary


def change_request_list_for_user(*, user: Any) -> QuerySet[ChangeRequest]:
    visible = microservice_list_for_user(user=user).values("pk")
    return (
        ChangeRequest.objects.filter(microservice__in=visible)
        .select_related("microservice", "microservice__team", "created_by")
        .order_by("-created_at", "-pk")
    )


def change_request_review_queue(*, user: Any) -> QuerySet[ChangeRequest]:
    """Planned change requests awaiting a security review, oldest first (reviewers only)."""
    if not is_reviewer(user):
        return ChangeRequest.objects.none()
    return (
        ChangeRequest.objects.filter(status=ChangeStatus.PLANNED)
        .select_related("microservice", "microservice__team", "created_by")
        .order_by("created_at", "pk")
    )


def change_request_latest_plans(*, change_request: ChangeRequest) -> list[Run]:
    """The newest plan run per workspace: what a reviewer is shown and what approval binds to."""
    latest: dict[int, Run] = {}
    runs = change_request.runs.filter(kind=RunKind.PLAN).select_related("workspace__cluster")
    for run in runs.order_by("created_at", "pk"):
        latest[run.workspace_id] = run
    return sorted(latest.values(), key=lambda r: r.workspace.cluster.name)


def change_request_failures(*, change_request: ChangeRequest) -> list[dict[str, Any]]:
    """For a failed change request: each failed or interrupted run of it, latest per workspace,
    with the short diagnostics (summary and resource address); the full log is the run page."""
    if change_request.status != ChangeStatus.FAILED:
        return []
    latest: dict[int, Run] = {}
    for run in change_request.runs.select_related("workspace__cluster").order_by("pk"):
        latest[run.workspace_id] = run
    return [
        {
            "run": run,
            "cluster": run.workspace.cluster.name,
            "diagnostics": failure_summary(error=run.error, log=run.log),
        }
        for run in latest.values()
        if run.status in (RunStatus.FAILED, RunStatus.INTERRUPTED)
    ]
