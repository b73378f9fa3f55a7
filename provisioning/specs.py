"""Translate between the database and the pure ``WorkspaceSpec`` the policy builders take."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from provisioning.iam.spec import WorkspaceSpec, parse_workspace_spec
from provisioning.models import Cluster, Environment, Microservice, NameScheme, Workspace


def cluster_spec_data(cluster: Cluster) -> dict[str, str]:
    return {
        "name": cluster.name,
        "account_id": cluster.account_id,
        "region": cluster.region,
        "oidc_provider_arn": cluster.oidc_provider_arn,
    }


def workspace_spec_data(
    *,
    microservice: str,
    namespace: str,
    service_accounts: list[str],
    resources: list[dict[str, Any]],
    cluster: Cluster,
    name_scheme: int,
) -> dict[str, Any]:
    """``name_scheme`` is the workspace's (``workspace_name_scheme``): a workspace applied before
    the upgrade must keep deriving its legacy names."""
    return {
        "microservice": microservice,
        "namespace": namespace,
        "service_accounts": list(service_accounts),
        "resources": [_with_defaults(r, cluster) for r in resources],
        "cluster": cluster_spec_data(cluster),
        # Stored with every run's spec, so a run always renders the names it was planned with.
        "bucket_suffix": settings.S3_BUCKET_NAME_SUFFIX,
        "name_scheme": name_scheme,
    }


def workspace_name_scheme(*, microservice: Microservice | None, cluster: Cluster) -> int:
    """The naming scheme of the service's workspace in ``cluster``; current for a new one."""
    if microservice is None or microservice.pk is None:
        return NameScheme.CURRENT
    scheme = (
        Workspace.objects.filter(microservice=microservice, cluster=cluster)
        .values_list("name_scheme", flat=True)
        .first()
    )
    return NameScheme.CURRENT if scheme is None else scheme


def _with_defaults(resource: dict[str, Any], cluster: Cluster) -> dict[str, Any]:
    """Tables in production clusters are protected from deletion unless the spec says otherwise;
    every table keeps point-in-time recovery unless its spec opts out (the module always had it
    on, so an existing table never loses its backups by a default changing under it)."""
    resource = dict(resource)
    if resource.get("kind") == "dynamodb_table" and isinstance(resource.get("settings", {}), dict):
        settings = dict(resource.get("settings") or {})
        settings.setdefault("deletion_protection", cluster.environment == Environment.PROD)
        settings.setdefault("point_in_time_recovery", True)
        resource["settings"] = settings
    return resource


def build_workspace_spec(**kwargs: Any) -> WorkspaceSpec:
    """Validated spec for one cluster; raises ``SpecError`` with field paths."""
    return parse_workspace_spec(workspace_spec_data(**kwargs))
