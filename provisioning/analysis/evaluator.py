"""A small IAM policy evaluator with AWS's semantics for one account. Pure.

``evaluate`` decides one request against a set of policies: an explicit Deny wins, else any Allow,
else the implicit deny. ``evaluate_request`` combines identity policies, a permissions boundary
and a resource (key) policy the way AWS does for a principal in the resource's own account.

Not evaluated (documented in docs/spec.md): policy variables, date/IP/binary condition operators
(statements using them are reported in ``unevaluated_conditions`` and never allow or deny),
session policies, SCPs and cross-account requests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from provisioning.analysis.conditions import (
    Context,
    Unsupported,
    conditions_hold,
    wildcard_regex,
)

ALLOW = "allow"
EXPLICIT_DENY = "explicit_deny"
IMPLICIT_DENY = "implicit_deny"
PRINCIPAL_TYPES = ("AWS", "Federated", "Service", "CanonicalUser")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    effect: str  # ALLOW | EXPLICIT_DENY | IMPLICIT_DENY
    statement: str | None  # Sid or "Statement[i]" of the deciding statement
    unevaluated_conditions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "effect": self.effect,
            "statement": self.statement,
            "unevaluated_conditions": list(self.unevaluated_conditions),
        }


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def statements_of(policy: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(label, statement) pairs; the label is the Sid, else ``Statement[i]``."""
    statements = _listed(policy.get("Statement"))
    return [
        (str(s.get("Sid") or f"Statement[{i}]"), s)
        for i, s in enumerate(statements)
        if isinstance(s, Mapping)
    ]


@lru_cache(maxsize=4096)
def _matcher(
    patterns: tuple[str, ...], ignore_case: bool
) -> tuple[frozenset[str], tuple[re.Pattern[str], ...]]:
    """Exact patterns as a set, wildcard ones as regexes: a policy's lists are matched often."""
    fold = str.lower if ignore_case else str
    exact = frozenset(fold(p) for p in patterns if "*" not in p and "?" not in p)
    wild = tuple(wildcard_regex(p, ignore_case) for p in patterns if "*" in p or "?" in p)
    return exact, wild


def _matches_any(patterns: Sequence[Any], value: str, *, ignore_case: bool) -> bool:
    exact, wild = _matcher(tuple(map(str, patterns)), ignore_case)
    if (value.lower() if ignore_case else value) in exact:
        return True
    return any(regex.match(value) for regex in wild)


def _action_applies(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return _matches_any(_listed(statement["Action"]), action, ignore_case=True)
    if "NotAction" in statement:
        return not _matches_any(_listed(statement["NotAction"]), action, ignore_case=True)
    return False


def _resource_applies(statement: Mapping[str, Any], resource: str) -> bool:
    if "Resource" in statement:
        return _matches_any(_listed(statement["Resource"]), resource, ignore_case=False)
    if "NotResource" in statement:
        return not _matches_any(_listed(statement["NotResource"]), resource, ignore_case=False)
    return True  # trust policies name no resource: the role itself is the resource


def _principal_values(value: Any) -> list[str]:
    if value == "*":
        return ["*"]
    if isinstance(value, Mapping):
        found: list[str] = []
        for kind in PRINCIPAL_TYPES:
            found += [str(v) for v in _listed(value.get(kind))]
        return found
    return [str(v) for v in _listed(value)]


def principal_matches(value: Any, principal: str) -> bool:
    """A Principal element names ``principal`` exactly, by its 12-digit account root, or ``*``;
    a role ARN also names that role's sessions (``arn:aws:sts::<acct>:assumed-role/<name>/<s>``)."""
    session_role = _session_role(principal)
    for named in _principal_values(value):
        if named == "*" or named == principal:
            return True
        if named.isdigit() and len(named) == 12 and principal == root_arn_for(principal, named):
            return True
        if session_role is not None and _role_identity(named) == session_role:
            return True
    return False


def _session_role(principal: str) -> tuple[str, str, str] | None:
    """(partition, account, role name) of an assumed-role session ARN, else None."""
    parts = principal.split(":", 5)
    if len(parts) != 6 or parts[2] != "sts" or not parts[5].startswith("assumed-role/"):
        return None
    name = parts[5].split("/")[1] if parts[5].count("/") >= 2 else ""
    return (parts[1], parts[4], name) if name else None


def _role_identity(arn: str) -> tuple[str, str, str] | None:
    """(partition, account, role name) of an IAM role ARN (any path), else None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    return parts[1], parts[4], parts[5].rsplit("/", 1)[-1]


def root_arn_for(principal: str, account: str | None = None) -> str:
    """``arn:<partition>:iam::<account>:root`` of the principal's (or the given) account."""
    parts = principal.split(":")
    partition = parts[1] if len(parts) > 4 and parts[1] else "aws"
    return f"arn:{partition}:iam::{account or (parts[4] if len(parts) > 4 else '')}:root"


def _principal_applies(statement: Mapping[str, Any], principal: str | None) -> bool:
    if "Principal" in statement:
        return principal is not None and principal_matches(statement["Principal"], principal)
    if "NotPrincipal" in statement:
        return principal is not None and not principal_matches(statement["NotPrincipal"], principal)
    return True  # identity policies: the attached principal


def evaluate(
    policies: Sequence[Mapping[str, Any]],
    *,
    action: str,
    resource: str,
    principal: str | None = None,
    context: Context | None = None,
) -> Decision:
    """One request against one set of policies: explicit deny, else allow, else implicit deny."""
    allowed_by: str | None = None
    unevaluated: list[str] = []
    for policy in policies:
        for label, statement in statements_of(policy):
            effect = statement.get("Effect")
            if effect not in ("Allow", "Deny"):
                continue
            if not (
                _principal_applies(statement, principal)
                and _action_applies(statement, action)
                and _resource_applies(statement, resource)
            ):
                continue
            try:
                if not conditions_hold(statement.get("Condition"), context):
                    continue
            except Unsupported as exc:
                unevaluated.append(f"{label}: {exc.args[0]}")
                continue
            if effect == "Deny":
                return Decision(False, EXPLICIT_DENY, label, tuple(unevaluated))
            allowed_by = allowed_by or label
    if allowed_by is not None:
        return Decision(True, ALLOW, allowed_by, tuple(unevaluated))
    return Decision(False, IMPLICIT_DENY, None, tuple(unevaluated))


def evaluate_request(
    *,
    identity_policies: Sequence[Mapping[str, Any]],
    action: str,
    resource: str,
    principal: str,
    context: Context | None = None,
    boundary: Mapping[str, Any] | None = None,
    resource_policy: Mapping[str, Any] | None = None,
    resource_policy_required: bool = False,
) -> Decision:
    """AWS's decision for ``principal`` in the resource's own account.

    Any explicit deny wins; a boundary, when given, must allow; then the identity policies allow
    (and, with ``resource_policy_required`` as for KMS keys, the key policy names the principal or
    delegates to the account root), or the resource policy alone allows the principal.
    """
    request = {"action": action, "resource": resource, "context": context}
    identity = evaluate(identity_policies, **request)
    bound = evaluate([boundary], **request) if boundary is not None else None
    direct = root = None
    if resource_policy is not None:
        direct = evaluate([resource_policy], principal=principal, **request)
        root = evaluate([resource_policy], principal=root_arn_for(principal), **request)
    decisions = [d for d in (identity, bound, direct, root) if d is not None]
    unevaluated = tuple(dict.fromkeys(u for d in decisions for u in d.unevaluated_conditions))
    for decision in decisions:
        if decision.effect == EXPLICIT_DENY:
            return Decision(False, EXPLICIT_DENY, decision.statement, unevaluated)
    if bound is not None and not bound.allowed:
        return Decision(False, IMPLICIT_DENY, None, unevaluated)
    winner = _allowing(identity, direct, root, resource_policy_required)
    if winner is None:
        return Decision(False, IMPLICIT_DENY, None, unevaluated)
    return Decision(True, ALLOW, winner.statement, unevaluated)


def _allowing(
    identity: Decision,
    direct: Decision | None,
    root: Decision | None,
    resource_policy_required: bool,
) -> Decision | None:
    """The decision that grants access, or None (the caller has already ruled out denies)."""
    if direct is not None and direct.allowed:
        return direct  # a resource policy naming the principal grants on its own
    if not identity.allowed:
        return None
    if not resource_policy_required:
        return identity
    # KMS: the identity allow only counts when the key policy delegates to the account root.
    return identity if root is not None and root.allowed else None
