"""What a security reviewer is shown about a change request: per plan, the policies the portal
generated, the grant diff against what is live, the lint findings and the access matrix
(``provisioning.analysis``), and the change's summary (classification, blocking or not).

The analysis of a plan is computed when its change request's plans finish and stored in
``Run.analysis`` (by ``services.changes``); this module computes it for a plan that lacks it.
"""

from __future__ import annotations

from typing import Any

from provisioning.analysis.findings import HIGH
from provisioning.analysis.matrix import NeighbourResource
from provisioning.analysis.review import analyse_change, analyse_workspace
from provisioning.iam.policies import render_policies
from provisioning.iam.spec import SpecError, WorkspaceSpec, parse_workspace_spec
from provisioning.models import (
    ChangeKind,
    ChangeRequest,
    Run,
    RunKind,
    RunStatus,
    Workspace,
    WorkspaceStatus,
)
from provisioning.selectors.changes import change_request_latest_plans

_NOT_LIVE = (WorkspaceStatus.NEW, WorkspaceStatus.DESTROYED)


def workspace_live_spec(*, workspace: Workspace) -> WorkspaceSpec | None:
    """The spec of the workspace's last successful apply; None when nothing is live."""
    if workspace.status in _NOT_LIVE:
        return None
    last = (
        workspace.runs.filter(kind=RunKind.APPLY, status=RunStatus.SUCCEEDED)
        .order_by("finished_at", "pk")
        .last()
    )
    if last is None:
        return None
    try:
        return parse_workspace_spec(last.spec)
    except SpecError:  # applied under an older catalog: nothing comparable to diff against
        return None


def workspace_neighbours(*, workspace: Workspace) -> list[NeighbourResource]:
    """Other microservices' live resources and keys in the workspace's AWS account: the matrix
    checks that this workspace's policies reach none of them."""
    return account_neighbours(
        account_id=workspace.cluster.account_id, microservice_name=workspace.microservice.name
    )


def account_neighbours(*, account_id: str, microservice_name: str) -> list[NeighbourResource]:
    """Every live resource and key in the account that belongs to another microservice."""
    others = (
        Workspace.objects.filter(cluster__account_id=account_id)
        .exclude(microservice__name=microservice_name)
        .exclude(status__in=_NOT_LIVE)
        .select_related("microservice")
        .order_by("pk")
    )
    neighbours = []
    for other in others:
        owner = other.microservice.name
        for name, arn in sorted((other.resource_arns or {}).items()):
            kind = name.split("/", 1)[0]
            neighbours.append(NeighbourResource(owner=owner, kind=kind, arn=arn))
        if other.kms_key_arn:
            neighbours.append(NeighbourResource(owner=owner, kind="kms_key", arn=other.kms_key_arn))
    return neighbours


def plan_run_analysis(*, run: Run) -> dict[str, Any]:
    """Analyse one plan: the proposed spec is the plan's (None for a destroy plan); the key is
    the workspace's real key when it exists, else a marked placeholder."""
    workspace = run.workspace
    key_arn = workspace.kms_key_arn or None
    live_spec = workspace_live_spec(workspace=workspace)
    analysis = analyse_workspace(
        spec=None if run.destroy_plan else parse_workspace_spec(run.spec),
        key_arn=key_arn,
        live_spec=live_spec,
        live_key_arn=key_arn,
        neighbours=workspace_neighbours(workspace=workspace),
    )
    # What the diff was taken against, so the page can show the policies side by side as they
    # were when the plan was reviewed (a later apply changes what is live).
    live = render_policies(live_spec, key_arn=key_arn) if live_spec is not None else None
    return {**analysis, "live_policies": live}


def change_request_review(*, change_request: ChangeRequest) -> dict[str, Any]:
    """Per workspace (the newest plan each) its analysis, and the change's summary once every
    plan has one. ``blocking_findings`` lists the high findings (with their cluster)."""
    workspaces = []
    for run in change_request_latest_plans(change_request=change_request):
        analysis = run.analysis or None
        if analysis is None and run.status == RunStatus.SUCCEEDED:
            analysis = _analyse_quietly(run)
        workspaces.append(
            {
                "run": run.pk,
                "cluster": run.workspace.cluster.name,
                "status": run.status,
                "destroy": run.destroy_plan,
                "has_changes": run.has_changes,
                "plan_sha256": run.plan_sha256,
                "analysis": analysis,
            }
        )
    analysed = [w["analysis"] for w in workspaces if w["analysis"] and "error" not in w["analysis"]]
    summary = None
    if workspaces and len(analysed) == len(workspaces):
        summary = analyse_change(
            analysed,
            decommission=change_request.kind == ChangeKind.DECOMMISSION
            or any(w["destroy"] for w in workspaces),
        )
    return {
        "workspaces": workspaces,
        "summary": summary,
        "data_protection": [
            row
            for run in change_request_latest_plans(change_request=change_request)
            if not run.destroy_plan
            for row in table_protection(cluster=run.workspace.cluster.name, spec=run.spec)
        ],
        "blocking_findings": [
            {**finding, "cluster": w["cluster"]}
            for w in workspaces
            for finding in ((w["analysis"] or {}).get("findings") or [])
            if finding.get("severity") == HIGH
        ],
    }


def table_protection(*, cluster: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each table of a plan's spec with its deletion protection and point-in-time recovery (the
    spec carries the cluster's defaults: on in prod)."""
    return [
        {
            "cluster": cluster,
            "resource": r.get("name", ""),
            "deletion_protection": bool(settings.get("deletion_protection", False)),
            "point_in_time_recovery": bool(settings.get("point_in_time_recovery", False)),
        }
        for r in spec.get("resources") or []
        if r.get("kind") == "dynamodb_table"
        for settings in [r.get("settings") or {}]
    ]


def _analyse_quietly(run: Run) -> dict[str, Any]:
    try:
        return plan_run_analysis(run=run)
    except SpecError as exc:
        return {"error": f"The plan's spec cannot be analysed: {exc}"}
