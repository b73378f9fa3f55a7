"""Reads about microservices, teams and clusters. Every list a user sees is filtered here."""

from __future__ import annotations

from typing import Any

from django.db.models import F, QuerySet

from provisioning.models import ChangeKind, Cluster, Microservice, Team, WorkspaceStatus
from provisioning.permissions import is_reviewer


def microservice_list_for_user(*, user: Any) -> QuerySet[Microservice]:
    """Developers see their teams' services; reviewers and staff see all."""
    qs = Microservice.objects.select_related("team").order_by("name")
    if user.is_staff or is_reviewer(user):
        return qs
    return qs.filter(team__members=user).distinct()


def microservice_get_for_user(*, user: Any, name: str) -> Microservice:
    """The service of that name the user may see: the live one, else the latest decommissioned
    (a name is free again once its decommission is applied).

    Raises ``Microservice.DoesNotExist``."""
    found = (
        microservice_list_for_user(user=user)
        .filter(name=name)
        .order_by(F("decommissioned_at").desc(nulls_first=True), "-pk")
        .first()
    )
    if found is None:
        raise Microservice.DoesNotExist(f"No microservice named {name!r}.")
    return found


def team_list_for_user(*, user: Any) -> QuerySet[Team]:
    """Teams the user may register a microservice for: their own; staff may use any."""
    qs = Team.objects.order_by("name")
    if user.is_staff:
        return qs
    return qs.filter(members=user).distinct()


def cluster_list(*, user: Any) -> QuerySet[Cluster]:
    """Clusters are shared infrastructure: every signed-in user may target and list them."""
    return Cluster.objects.order_by("name")


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
