"""The access matrix: what the generated policies actually allow, checked against what they should.

Rows are (action, resource) requests by the workspace's role, evaluated with ``evaluate_request``:
- own: each own resource x every catalog action of its kind, on each ARN form the catalog uses
  (only the forms IAM says the action applies to), allowed exactly when the requested level lists
  it; the own key x every KMS action the catalog uses, through each catalog service
  (``kms:ViaService``) and directly, evaluated with the key policy as IAM does for KMS;
- neighbour: other microservices' tables, buckets and keys x the same actions, all denied;
- sensitive: ``SENSITIVE_ACTIONS`` on the workspace's own resources, role and key, all denied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provisioning.analysis import iam_data
from provisioning.analysis.evaluator import evaluate_request
from provisioning.iam import naming
from provisioning.iam.catalog import ARN_TOKEN, Catalog, load_catalog
from provisioning.iam.spec import WorkspaceSpec

OWN, NEIGHBOUR, SENSITIVE = "own", "neighbour", "sensitive"
KMS_KEY, IAM_ROLE = "kms_key", "iam_role"
# What stands in for the catalog's ``*`` when a row needs one concrete sub-resource.
SAMPLE_SUB_RESOURCE = "irsa-matrix-probe"
# Actions the workload role must never be able to use on its own resources, role or key.
SENSITIVE_ACTIONS: dict[str, str] = {
    "dynamodb:DeleteTable": "dynamodb_table",
    "dynamodb:UpdateTable": "dynamodb_table",
    "dynamodb:PutResourcePolicy": "dynamodb_table",
    "s3:DeleteBucket": "s3_bucket",
    "s3:PutBucketPolicy": "s3_bucket",
    "s3:PutBucketAcl": "s3_bucket",
    "kms:ScheduleKeyDeletion": KMS_KEY,
    "kms:PutKeyPolicy": KMS_KEY,
    "kms:CreateGrant": KMS_KEY,
    "kms:DisableKey": KMS_KEY,
    "iam:CreateRole": IAM_ROLE,
    "iam:PassRole": IAM_ROLE,
    "iam:PutRolePolicy": IAM_ROLE,
    "iam:AttachRolePolicy": IAM_ROLE,
    "iam:UpdateAssumeRolePolicy": IAM_ROLE,
    "sts:AssumeRole": IAM_ROLE,
}


@dataclass(frozen=True)
class NeighbourResource:
    owner: str  # the other microservice (or team) it belongs to
    kind: str  # "dynamodb_table" | "s3_bucket" | "kms_key"
    arn: str

    def to_dict(self) -> dict[str, str]:
        return {"owner": self.owner, "kind": self.kind, "arn": self.arn}


@dataclass(frozen=True)
class MatrixRow:
    category: str  # OWN | NEIGHBOUR | SENSITIVE
    kind: str
    action: str
    resource: str
    expected: bool
    actual: bool
    ok: bool
    statement: str | None
    context: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "kind": self.kind,
            "action": self.action,
            "resource": self.resource,
            "expected": self.expected,
            "actual": self.actual,
            "ok": self.ok,
            "statement": self.statement,
            "context": dict(self.context),
        }


@dataclass(frozen=True)
class Matrix:
    rows: tuple[MatrixRow, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> tuple[MatrixRow, ...]:
        return tuple(r for r in self.rows if not r.ok)

    def to_dict(self) -> dict[str, Any]:
        failures = self.failures
        return {
            "verdict": "ok" if not failures else "fail",
            "counts": {
                "rows": len(self.rows),
                "allowed": sum(r.actual for r in self.rows),
                "denied": sum(not r.actual for r in self.rows),
                "failures": len(failures),
            },
            "rows": [r.to_dict() for r in self.rows],
        }


@dataclass(frozen=True)
class _Request:
    """One row to evaluate before its actual outcome is known."""

    category: str
    kind: str
    action: str
    resource: str
    expected: bool
    context: dict[str, str] = field(default_factory=dict)
    key: bool = False  # evaluate with the key policy as the required resource policy


def kind_actions(catalog: Catalog, kind: str) -> list[tuple[str, str]]:
    """Every (action, ARN pattern) the catalog uses for ``kind``, over all its levels."""
    pairs = {
        (action, pattern)
        for level in catalog.kinds[kind].levels.values()
        for statement in level.statements
        for action in statement.actions
        for pattern in statement.resources
    }
    return sorted(pairs)


def level_pairs(catalog: Catalog, kind: str, level: str) -> frozenset[tuple[str, str]]:
    return frozenset(
        (action, pattern)
        for statement in catalog.level(kind, level).statements
        for action in statement.actions
        for pattern in statement.resources
    )


def concrete(pattern: str, arn: str) -> str:
    return pattern.replace(ARN_TOKEN, arn).replace("*", SAMPLE_SUB_RESOURCE)


def kms_actions(catalog: Catalog) -> list[str]:
    return sorted(
        {
            a
            for kind in catalog.kinds.values()
            for lvl in kind.levels.values()
            for a in lvl.kms_actions
        }
    )


def _resource_rows(spec: WorkspaceSpec, catalog: Catalog) -> list[_Request]:
    rows = []
    for resource in sorted(spec.resources, key=lambda r: (r.kind, r.name)):
        arn = naming.resource_arn(spec, resource)
        granted = level_pairs(catalog, resource.kind, resource.access)
        for action, pattern in kind_actions(catalog, resource.kind):
            target = concrete(pattern, arn)
            if iam_data.grants_on(action, target):
                expected = (action, pattern) in granted
                rows.append(_Request(OWN, resource.kind, action, target, expected))
    return rows


def _via_contexts(spec: WorkspaceSpec, catalog: Catalog) -> list[dict[str, str]]:
    region = spec.cluster.region
    services = sorted({kind.service for kind in catalog.kinds.values()})
    return [{"kms:ViaService": f"{s}.{region}.amazonaws.com"} for s in services] + [{}]


def _key_rows(spec: WorkspaceSpec, key_arn: str, catalog: Catalog) -> list[_Request]:
    from provisioning.iam.policies import via_services

    granted = {a for r in spec.resources for a in catalog.level(r.kind, r.access).kms_actions}
    vias = set(via_services(spec, catalog))
    return [
        _Request(
            OWN,
            KMS_KEY,
            action,
            key_arn,
            action in granted and context.get("kms:ViaService") in vias,
            context,
            key=True,
        )
        for action in kms_actions(catalog)
        for context in _via_contexts(spec, catalog)
    ]


def _neighbour_rows(
    spec: WorkspaceSpec, neighbours: Sequence[NeighbourResource], catalog: Catalog
) -> list[_Request]:
    rows = []
    for neighbour in neighbours:
        if neighbour.kind == KMS_KEY:
            for action in kms_actions(catalog):
                for context in _via_contexts(spec, catalog):
                    rows.append(_Request(NEIGHBOUR, KMS_KEY, action, neighbour.arn, False, context))
            continue
        for action, pattern in kind_actions(catalog, neighbour.kind):
            target = concrete(pattern, neighbour.arn)
            if iam_data.grants_on(action, target):
                rows.append(_Request(NEIGHBOUR, neighbour.kind, action, target, False))
    return rows


def _sensitive_rows(spec: WorkspaceSpec, key_arn: str) -> list[_Request]:
    targets: dict[str, list[str]] = {KMS_KEY: [key_arn], IAM_ROLE: [naming.role_arn(spec)]}
    for resource in sorted(spec.resources, key=lambda r: (r.kind, r.name)):
        targets.setdefault(resource.kind, []).append(naming.resource_arn(spec, resource))
    return [
        _Request(SENSITIVE, kind, action, arn, False, key=kind == KMS_KEY)
        for action, kind in SENSITIVE_ACTIONS.items()
        for arn in targets.get(kind, [])
    ]


def _evaluate(request: _Request, policies: Mapping[str, Any], principal: str) -> MatrixRow:
    decision = evaluate_request(
        identity_policies=[policies["identity_policy"]],
        action=request.action,
        resource=request.resource,
        principal=principal,
        context=request.context,
        resource_policy=policies["key_policy"] if request.key else None,
        resource_policy_required=request.key,
    )
    return MatrixRow(
        category=request.category,
        kind=request.kind,
        action=request.action,
        resource=request.resource,
        expected=request.expected,
        actual=decision.allowed,
        ok=decision.allowed == request.expected and not decision.unevaluated_conditions,
        statement=decision.statement,
        context=dict(request.context),
    )


def access_matrix(
    spec: WorkspaceSpec,
    policies: Mapping[str, Any],
    *,
    neighbours: Sequence[NeighbourResource] = (),
    catalog: Catalog | None = None,
) -> Matrix:
    """Evaluate the workspace's identity and key policies over its own, neighbours' and sensitive
    requests; a row is ok when the outcome is the expected one and nothing went unevaluated."""
    catalog = catalog or load_catalog()
    key_arn = policies["kms_key"]["arn"]
    requests = (
        _resource_rows(spec, catalog)
        + _key_rows(spec, key_arn, catalog)
        + _neighbour_rows(spec, neighbours, catalog)
        + _sensitive_rows(spec, key_arn)
    )
    principal = policies["role"]["arn"]
    return Matrix(tuple(_evaluate(r, policies, principal) for r in requests))
