"""Pure builders for a workspace's three policies: identity, IRSA trust and KMS key policy.

Deterministic: statements follow the catalog's order (kinds and levels sorted by name, statements
as listed), resources and actions are sorted, Sids come from the catalog. The irsa Terraform module
builds the identity policy from the same catalog in the same order, so the two documents are equal.
"""

from __future__ import annotations

import json
from typing import Any

from provisioning.iam import naming
from provisioning.iam.catalog import ARN_TOKEN, Catalog, load_catalog
from provisioning.iam.spec import WorkspaceSpec

POLICY_VERSION = "2012-10-17"
MANAGED_POLICY_MAX_CHARS = 6144
TRUST_POLICY_MAX_CHARS = 2048
WEB_IDENTITY_ACTION = "sts:AssumeRoleWithWebIdentity"
STS_AUDIENCE = "sts.amazonaws.com"
KMS_SID = "KmsUseWorkspaceKey"

Policy = dict[str, Any]


def build_identity_policy(
    spec: WorkspaceSpec, *, key_arn: str, catalog: Catalog | None = None
) -> Policy:
    """Catalog actions on this workspace's own ARNs, plus use of its own KMS key."""
    catalog = catalog or load_catalog()
    statements: list[dict[str, Any]] = []
    for kind_name, kind in sorted(catalog.kinds.items()):
        for level_name, level in sorted(kind.levels.items()):
            arns = sorted(
                naming.resource_arn(spec, r)
                for r in spec.resources
                if r.kind == kind_name and r.access == level_name
            )
            if not arns:
                continue
            for entry in level.statements:
                statements.append(
                    {
                        "Sid": entry.sid,
                        "Effect": "Allow",
                        "Action": list(entry.actions),
                        "Resource": sorted(
                            p.replace(ARN_TOKEN, a) for a in arns for p in entry.resources
                        ),
                    }
                )
    statements.append(_kms_statement(spec, key_arn, catalog))
    return {"Version": POLICY_VERSION, "Statement": statements}


def _kms_statement(spec: WorkspaceSpec, key_arn: str, catalog: Catalog) -> dict[str, Any]:
    actions = sorted(
        {a for r in spec.resources for a in catalog.level(r.kind, r.access).kms_actions}
    )
    return {
        "Sid": KMS_SID,
        "Effect": "Allow",
        "Action": actions,
        "Resource": [key_arn],
        "Condition": {"StringEquals": {"kms:ViaService": via_services(spec, catalog)}},
    }


def via_services(spec: WorkspaceSpec, catalog: Catalog | None = None) -> list[str]:
    catalog = catalog or load_catalog()
    region = spec.cluster.region
    return sorted(
        {f"{catalog.kinds[r.kind].service}.{region}.amazonaws.com" for r in spec.resources}
    )


def service_account_subjects(spec: WorkspaceSpec) -> list[str]:
    return sorted(f"system:serviceaccount:{spec.namespace}:{sa}" for sa in spec.service_accounts)


def build_trust_policy(spec: WorkspaceSpec) -> Policy:
    """Only this microservice's service accounts, through the cluster's OIDC provider, for STS."""
    issuer = spec.cluster.oidc_issuer
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "IrsaServiceAccounts",
                "Effect": "Allow",
                "Principal": {"Federated": spec.cluster.oidc_provider_arn},
                "Action": WEB_IDENTITY_ACTION,
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:aud": STS_AUDIENCE,
                        f"{issuer}:sub": service_account_subjects(spec),
                    }
                },
            }
        ],
    }


def build_key_policy(
    spec: WorkspaceSpec, *, key_arn: str, catalog: Catalog | None = None
) -> Policy:
    """The account administers the key (as AWS requires); only the service role uses it."""
    catalog = catalog or load_catalog()
    c = spec.cluster
    root = f"arn:{c.partition}:iam::{c.account_id}:root"
    usage = _kms_statement(spec, key_arn, catalog)
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AccountAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": list(catalog.key_administration_actions),
                "Resource": [key_arn],
            },
            {
                "Sid": "AccountGrantsForAwsServices",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": list(catalog.key_service_grant_actions),
                "Resource": [key_arn],
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
            {
                "Sid": "ServiceRoleUse",
                "Effect": "Allow",
                "Principal": {"AWS": naming.role_arn(spec)},
                "Action": usage["Action"],
                "Resource": [key_arn],
                "Condition": usage["Condition"],
            },
        ],
    }


def policy_size(policy: Policy) -> int:
    """Characters IAM counts against its limits (the document without whitespace)."""
    return len(json.dumps(policy, separators=(",", ":")))


def limit_violations(spec: WorkspaceSpec, *, catalog: Catalog | None = None) -> list[str]:
    """Messages for every IAM size limit the spec's policies would exceed (empty when all fit)."""
    key_arn = naming.size_check_kms_key_arn(spec)
    problems = []
    identity = policy_size(build_identity_policy(spec, key_arn=key_arn, catalog=catalog))
    if identity > MANAGED_POLICY_MAX_CHARS:
        problems.append(
            f"The identity policy would be {identity:,} characters, over IAM's "
            f"{MANAGED_POLICY_MAX_CHARS:,} limit for a managed policy; split the resources "
            "between microservices or shorten their names."
        )
    trust = policy_size(build_trust_policy(spec))
    if trust > TRUST_POLICY_MAX_CHARS:
        problems.append(
            f"The trust policy would be {trust:,} characters, over IAM's "
            f"{TRUST_POLICY_MAX_CHARS:,} limit; use fewer or shorter service account names."
        )
    return problems


def render_policies(
    spec: WorkspaceSpec, *, key_arn: str | None = None, catalog: Catalog | None = None
) -> dict[str, Any]:
    """The preview document: resources with ARNs, the key, and the three policies."""
    catalog = catalog or load_catalog()
    placeholder = key_arn is None
    key = naming.pending_kms_key_arn(spec) if placeholder else key_arn
    return {
        "role": {
            "name": naming.role_name(spec),
            "path": naming.ROLE_PATH,
            "arn": naming.role_arn(spec),
        },
        "resources": [
            {
                "kind": r.kind,
                "name": r.name,
                "physical_name": naming.physical_name(spec, r),
                "access": r.access,
                "arn": naming.resource_arn(spec, r),
            }
            for r in sorted(spec.resources, key=lambda r: (r.kind, r.name))
        ],
        "kms_key": {"arn": key, "alias": naming.kms_alias(spec), "placeholder": placeholder},
        "identity_policy": build_identity_policy(spec, key_arn=key, catalog=catalog),
        "trust_policy": build_trust_policy(spec),
        "key_policy": build_key_policy(spec, key_arn=key, catalog=catalog),
    }
