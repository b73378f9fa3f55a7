"""A dry run: what a spec would grant, per cluster, before anything is proposed.

The same validation as registration and change requests (the spec rules and namespace ownership),
then the same analysis a reviewer reads; nothing is written.
"""

from __future__ import annotations

from typing import Any

from provisioning.analysis.review import analyse_change, analyse_workspace
from provisioning.iam.spec import SpecError
from provisioning.models import Cluster, Microservice, Team
from provisioning.selectors.namespaces import namespace_conflicts
from provisioning.selectors.review import account_neighbours, workspace_live_spec
from provisioning.specs import build_workspace_spec, workspace_name_scheme


def microservice_dry_run(
    *,
    team: Team,
    name: str,
    namespace: str,
    service_accounts: list[str],
    resources: list[dict[str, Any]],
    clusters: list[Cluster],
) -> dict[str, Any]:
    """Per cluster the policies, grant diff (against what is live), findings and access matrix,
    and the summary a change request with this spec would get. Raises ``SpecError``."""
    existing = Microservice.objects.filter(name=name).select_related("team").first()
    if existing is not None and existing.team_id != team.pk:
        raise SpecError(
            {
                "microservice": [
                    f"Microservice '{name}' belongs to team {existing.team.name}; "
                    "choose another name for a new service."
                ]
            }
        )
    if not clusters:
        raise SpecError({"clusters": ["Choose at least one cluster to deploy to."]})
    specs = [
        build_workspace_spec(
            microservice=name,
            namespace=namespace,
            service_accounts=service_accounts,
            resources=resources,
            cluster=cluster,
            name_scheme=workspace_name_scheme(microservice=existing, cluster=cluster),
        )
        for cluster in clusters
    ]
    conflicts = namespace_conflicts(
        team=team,
        microservice_name=name,
        namespace=namespace,
        service_accounts=service_accounts,
        clusters=clusters,
    )
    if conflicts:
        raise SpecError(conflicts)
    results = [
        _analyse(existing, cluster, spec) for cluster, spec in zip(clusters, specs, strict=True)
    ]
    return {
        "microservice": name,
        "team": team.name,
        "clusters": results,
        "summary": analyse_change(results, decommission=False),
    }


def _analyse(existing: Microservice | None, cluster: Cluster, spec: Any) -> dict[str, Any]:
    workspace = existing.workspaces.filter(cluster=cluster).first() if existing else None
    key_arn = (workspace.kms_key_arn or None) if workspace else None
    analysis = analyse_workspace(
        spec=spec,
        key_arn=key_arn,
        live_spec=workspace_live_spec(workspace=workspace) if workspace else None,
        live_key_arn=key_arn,
        neighbours=account_neighbours(
            account_id=cluster.account_id, microservice_name=spec.microservice
        ),
    )
    return {"cluster": cluster.name, **analysis}
