"""Everything a reviewer needs about one workspace of a change request, and the change's summary.

Pure: specs in, JSON-safe dicts out. Callers (selectors, the dry-run endpoint, ``render_policies``)
look up the live spec, the key ARN and the neighbours; this module only renders and analyses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from provisioning.analysis.diff import classify_additions, diff_grants
from provisioning.analysis.findings import SEVERITIES, Finding, blocking, severity_counts
from provisioning.analysis.grants import WorkspaceGrants, workspace_grants
from provisioning.analysis.lint import lint_policies
from provisioning.analysis.matrix import Matrix, NeighbourResource, access_matrix
from provisioning.iam.catalog import Catalog, load_catalog
from provisioning.iam.policies import render_policies
from provisioning.iam.spec import WorkspaceSpec


def _analysed(
    spec: WorkspaceSpec,
    key_arn: str | None,
    neighbours: Sequence[NeighbourResource],
    catalog: Catalog,
) -> tuple[dict[str, Any], WorkspaceGrants, list[Finding], Matrix]:
    policies = render_policies(spec, key_arn=key_arn, catalog=catalog)
    findings = lint_policies(
        policies, oidc_provider_arn=spec.cluster.oidc_provider_arn, catalog=catalog
    )
    matrix = access_matrix(spec, policies, neighbours=neighbours, catalog=catalog)
    return policies, workspace_grants(policies), findings, matrix


def analyse_workspace(
    *,
    spec: WorkspaceSpec | None,
    key_arn: str | None,
    live_spec: WorkspaceSpec | None = None,
    live_key_arn: str | None = None,
    neighbours: Sequence[NeighbourResource] = (),
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    """Policies, grants, grant diff against the live spec, findings and access matrix.

    ``spec`` None is a decommission: nothing is granted afterwards. ``key_arn`` None renders the
    marked placeholder (``policies.kms_key.placeholder``), unless the live key is known: a change
    keeps its workspace's key, so the live ARN is the right one for the proposal too.
    """
    catalog = catalog or load_catalog()
    key_arn = key_arn or live_key_arn
    live = (
        workspace_grants(render_policies(live_spec, key_arn=live_key_arn, catalog=catalog))
        if live_spec is not None
        else None
    )
    if spec is None:
        diff = diff_grants(live, None)
        return {
            "policies": None,
            "grants": WorkspaceGrants().to_dict(),
            "diff": diff.to_dict(),
            "findings": [],
            "matrix": Matrix(()).to_dict(),
        }
    policies, grants, findings, matrix = _analysed(spec, key_arn, neighbours, catalog)
    return {
        "policies": policies,
        "grants": grants.to_dict(),
        "diff": diff_grants(live, grants).to_dict(),
        "findings": [f.to_dict() for f in findings],
        "matrix": matrix.to_dict(),
    }


def _added(workspace: Mapping[str, Any], *sections: str) -> bool:
    added = (workspace.get("diff") or {}).get("added") or {}
    return any(added.get(section) for section in sections)


def analyse_change(workspaces: Sequence[Mapping[str, Any]], *, decommission: bool) -> dict:
    """The change request's summary from its workspaces' ``analyse_workspace`` results."""
    classification = classify_additions(
        new_trust=any(_added(w, "trust") for w in workspaces),
        new_access=any(_added(w, "identity", "key") for w in workspaces),
        decommission=decommission,
    )
    findings = [
        Finding(f["rule"], f["severity"], f["message"], f["location"])
        for w in workspaces
        for f in w.get("findings", [])
    ]
    counts = severity_counts(findings)
    return {
        "classification": classification.value,
        "classification_label": classification.label,
        "blocking": bool(blocking(findings)),
        "findings": {s: counts[s] for s in SEVERITIES},
        "matrix_ok": all((w.get("matrix") or {}).get("verdict", "ok") == "ok" for w in workspaces),
    }
