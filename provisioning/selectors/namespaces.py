"""Who may trust into which Kubernetes namespace.

A role's trust policy names ``system:serviceaccount:<namespace>:<sa>``: whoever can run a pod under
that service account gets the role. So a team may only ask for namespaces that are not the
cluster's own (``SYSTEM_NAMESPACES``), not assigned to another team, and not already used by
another team's live microservice; and a service account may be trusted by one microservice only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Q

from provisioning.models import (
    OPEN_CHANGE_STATUSES,
    ChangeKind,
    ChangeRequest,
    Cluster,
    Microservice,
    NamespaceOwnership,
    Team,
    WorkspaceStatus,
)

# A workspace that was never applied, or was destroyed, trusts nobody.
_NOT_LIVE = (WorkspaceStatus.NEW, WorkspaceStatus.DESTROYED)


def namespace_conflicts(
    *,
    team: Team,
    microservice_name: str,
    namespace: str,
    service_accounts: Iterable[str],
    clusters: Iterable[Cluster],
) -> dict[str, list[str]]:
    """Field errors (``namespace`` / ``service_accounts``) for this request; empty when allowed."""
    if namespace in settings.SYSTEM_NAMESPACES:
        return {
            "namespace": [
                f"'{namespace}' is a system namespace ({', '.join(settings.SYSTEM_NAMESPACES)}); "
                "run the service in a namespace of your team."
            ]
        }
    wanted = set(service_accounts)
    errors: dict[str, list[str]] = {}
    for cluster in clusters:
        owner = _other_owner(cluster=cluster, namespace=namespace, team=team)
        if owner is not None:
            errors.setdefault("namespace", []).append(
                f"Namespace '{namespace}' of cluster {cluster.name} belongs to team {owner}; "
                "choose a namespace of your team or ask a platform admin to assign one."
            )
            continue
        for account, holder in _trusted_accounts(
            cluster=cluster, namespace=namespace, exclude=microservice_name
        ).items():
            if account in wanted:
                errors.setdefault("service_accounts", []).append(
                    f"Service account '{namespace}:{account}' in cluster {cluster.name} is "
                    f"already trusted by microservice {holder}; use a service account of its own."
                )
    return errors


def _other_owner(*, cluster: Cluster, namespace: str, team: Team) -> str | None:
    """Another team owning the namespace: assigned by an admin, else already running there.

    An admin's assignment wins over what runs there, so a namespace can be handed over.
    """
    assigned = NamespaceOwnership.objects.filter(cluster=cluster, namespace=namespace)
    row = assigned.select_related("team").first()
    if row is not None:
        return row.team.name if row.team_id != team.pk else None
    running = (
        _live_microservices(cluster=cluster)
        .filter(namespace=namespace)
        .exclude(team=team)
        .select_related("team")
        .order_by("pk")
        .first()
    )
    return running.team.name if running is not None else None


def _live_microservices(*, cluster: Cluster) -> Any:
    live_workspaces = Q(workspaces__cluster=cluster) & ~Q(workspaces__status__in=_NOT_LIVE)
    return Microservice.objects.filter(live_workspaces, decommissioned_at__isnull=True).distinct()


def _trusted_accounts(*, cluster: Cluster, namespace: str, exclude: str) -> dict[str, str]:
    """Service account → microservice, for every subject trusted (live) or asked for (open)."""
    trusted: dict[str, str] = {}
    for service in _live_microservices(cluster=cluster).filter(namespace=namespace):
        if service.name != exclude:
            trusted.update(dict.fromkeys(service.service_accounts, service.name))
    proposals = (
        ChangeRequest.objects.filter(status__in=OPEN_CHANGE_STATUSES)
        .exclude(kind=ChangeKind.DECOMMISSION)
        .exclude(microservice__name=exclude)
        .filter(spec__namespace=namespace)
        .select_related("microservice")
    )
    for change in proposals:
        # Cluster membership is checked here, not with a JSON `contains` lookup, which SQLite
        # (the zero-setup local database) does not support.
        if cluster.name not in (change.spec.get("clusters") or []):
            continue
        accounts = change.spec.get("service_accounts") or []
        trusted.update(dict.fromkeys(accounts, change.microservice.name))
    return trusted
