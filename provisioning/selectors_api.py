"""Reads for the pages and the REST API that ``selectors.py`` does not have yet.

Everything a user may see is derived from ``microservice_list_for_user``: a change request, a
workspace or a run is visible exactly when its microservice is.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from provisioning.models import (
    ChangeKind,
    ChangeRequest,
    ChangeStatus,
    Cluster,
    Microservice,
    Run,
    RunKind,
    Team,
    WorkspaceStatus,
)
from provisioning.permissions import is_reviewer
from provisioning.selectors import microservice_list_for_user


def team_list_for_user(*, user: Any) -> QuerySet[Team]:
    """Teams the user may register a microservice for: their own; staff may use any."""
    qs = Team.objects.order_by("name")
    if user.is_staff:
        return qs
    return qs.filter(members=user).distinct()


def cluster_list(*, user: Any) -> QuerySet[Cluster]:
    """Clusters are shared infrastructure: every signed-in user may target and list them."""
    return Cluster.objects.order_by("name")


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


def run_list_for_user(*, user: Any) -> QuerySet[Run]:
    visible = microservice_list_for_user(user=user).values("pk")
    return Run.objects.filter(workspace__microservice__in=visible).select_related(
        "workspace", "workspace__cluster", "workspace__microservice"
    )


def change_request_latest_plans(*, change_request: ChangeRequest) -> list[Run]:
    """The newest plan run per workspace: what a reviewer is shown and what approval binds to."""
    latest: dict[int, Run] = {}
    runs = change_request.runs.filter(kind=RunKind.PLAN).select_related("workspace__cluster")
    for run in runs.order_by("created_at", "pk"):
        latest[run.workspace_id] = run
    return sorted(latest.values(), key=lambda r: r.workspace.cluster.name)


def microservice_live_spec(*, microservice: Microservice) -> dict[str, Any]:
    """The spec as applied, to prefill a proposal; before the first apply, the newest proposal's.

    Clusters are those with a workspace that is not destroyed.
    """
    resources = [
        {"kind": r.kind, "name": r.name, "access": r.access, "settings": r.settings}
        for r in microservice.resources.order_by("kind", "name")
    ]
    clusters = sorted(
        microservice.workspaces.exclude(status=WorkspaceStatus.DESTROYED).values_list(
            "cluster__name", flat=True
        )
    )
    if not resources:
        proposals = microservice.change_requests.exclude(kind=ChangeKind.DECOMMISSION)
        latest = proposals.order_by("-pk").first()
        if latest is not None:
            return {**latest.spec}
    return {
        "namespace": microservice.namespace,
        "service_accounts": list(microservice.service_accounts),
        "resources": resources,
        "clusters": clusters,
    }
