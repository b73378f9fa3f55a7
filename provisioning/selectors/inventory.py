"""The inventory: every IAM role and every KMS key the portal manages, across services and
clusters, for the pages, the CSV export and the REST API.

One workspace holds one role and one key, so a row is a workspace seen as a role or as a key.
Everything a row shows comes from annotations on one query, so a page of rows costs the same
number of queries whatever the number of services.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import CharField, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT

from provisioning.models import Run, RunKind, RunStatus, Workspace, WorkspaceStatus
from provisioning.selectors.microservices import microservice_list_for_user

# The key module (terraform/modules/kms-key) always enables yearly rotation; a destroyed key
# waits this many days (the renderer's default window) before AWS deletes it.
KEY_ROTATION = "Yearly (automatic)"
KEY_DELETION_WINDOW_DAYS = 7

INVENTORY_KINDS = ("role", "key")
INVENTORY_COLUMNS = (
    "kind",
    "microservice",
    "team",
    "cluster",
    "environment",
    "arn",
    "status",
    "rotation",
    "pending_deletion_on",
    "last_applied_at",
    "verification",
    "last_verified_at",
    "drift",
)


@dataclass(frozen=True)
class InventoryFilters:
    """What the inventory page, the CSV export and the API filter by; empty means all."""

    team: str = ""
    cluster: str = ""
    status: str = ""  # a WorkspaceStatus value
    search: str = ""  # part of a microservice name or an ARN
    drifted: bool = False


def workspace_inventory_for_user(
    *, user: Any, filters: InventoryFilters | None = None
) -> QuerySet[Workspace]:
    """Workspaces the user may see (those of visible microservices), annotated with the last
    successful apply's time and key ARN and the destroy's time; newest service names first."""
    filters = filters or InventoryFilters()
    visible = microservice_list_for_user(user=user).values("pk")
    applies = Run.objects.filter(
        workspace=OuterRef("pk"),
        kind__in=(RunKind.APPLY, RunKind.DESTROY),
        status=RunStatus.SUCCEEDED,
    ).order_by("-finished_at", "-pk")
    qs = (
        Workspace.objects.filter(microservice__in=visible)
        .select_related("microservice", "microservice__team", "cluster")
        .annotate(
            last_applied_at=Subquery(applies.values("finished_at")[:1]),
            last_applied_kind=Subquery(applies.values("kind")[:1]),
            last_key_arn=Subquery(
                applies.filter(kind=RunKind.APPLY).values(key_arn=KT("outputs__kms_key_arn"))[:1],
                output_field=CharField(),
            ),
        )
        .order_by("microservice__name", "cluster__name")
    )
    return _filtered(qs, filters)


def _filtered(qs: QuerySet[Workspace], filters: InventoryFilters) -> QuerySet[Workspace]:
    if filters.team:
        qs = qs.filter(microservice__team__name=filters.team)
    if filters.cluster:
        qs = qs.filter(cluster__name=filters.cluster)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.drifted:
        qs = qs.filter(status=WorkspaceStatus.DRIFTED)
    if filters.search:
        term = filters.search.strip()
        qs = qs.filter(
            Q(microservice__name__icontains=term)
            | Q(role_arn__icontains=term)
            | Q(kms_key_arn__icontains=term)
        )
    return qs


def inventory_rows(*, workspaces: Any, kind: str) -> list[dict[str, Any]]:
    """The rows (``INVENTORY_COLUMNS``) of annotated workspaces seen as roles or as keys."""
    if kind not in INVENTORY_KINDS:
        raise ValueError(f"kind must be one of {', '.join(INVENTORY_KINDS)}, not {kind!r}.")
    build = _role_row if kind == "role" else _key_row
    return [build(workspace) for workspace in workspaces]


def _common(workspace: Workspace, kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "workspace_id": workspace.pk,
        "microservice": workspace.microservice.name,
        "team": workspace.microservice.team.name,
        "cluster": workspace.cluster.name,
        "environment": workspace.cluster.environment,
        "last_applied_at": _applied_at(workspace),
        "verification": workspace.verification_status,
        "last_verified_at": workspace.verified_at,
        "drift": workspace.status == WorkspaceStatus.DRIFTED,
    }


def _applied_at(workspace: Workspace) -> datetime | None:
    if getattr(workspace, "last_applied_kind", None) == RunKind.APPLY:
        return workspace.last_applied_at  # type: ignore[attr-defined]
    return None


def _role_row(workspace: Workspace) -> dict[str, Any]:
    return {
        **_common(workspace, "role"),
        "arn": workspace.role_arn,
        "status": workspace.status,
        "rotation": "",
        "pending_deletion_on": None,
    }


def _key_row(workspace: Workspace) -> dict[str, Any]:
    """A destroyed workspace's key is no longer in the workspace: the last apply's output names
    it, and AWS deletes it a deletion window after the destroy."""
    row = {**_common(workspace, "key"), "rotation": "", "pending_deletion_on": None}
    if workspace.status == WorkspaceStatus.DESTROYED:
        destroyed_at = getattr(workspace, "last_applied_at", None)
        arn = getattr(workspace, "last_key_arn", None) or ""
        pending = None
        if arn and destroyed_at and workspace.last_applied_kind == RunKind.DESTROY:  # type: ignore[attr-defined]
            pending = (destroyed_at + timedelta(days=KEY_DELETION_WINDOW_DAYS)).date()
        status = "pending_deletion" if pending else WorkspaceStatus.DESTROYED.value
        return {**row, "arn": arn, "status": status, "pending_deletion_on": pending}
    return {
        **row,
        "arn": workspace.kms_key_arn,
        "status": workspace.status,
        "rotation": KEY_ROTATION if workspace.kms_key_arn else "",
    }
