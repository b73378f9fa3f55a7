"""What a workspace's policies grant, as sets of small facts that can be compared. Pure.

Identity statements expand to one grant per (action, resource) pair that IAM's data says can
take effect (``dynamodb:GetItem`` on ``table/x/index/*`` cannot, so it is no grant); trust
statements to one per (provider, namespace, service account, audience); key statements to one
per (principal, action).
A condition that lists alternatives (``StringEquals: {kms:ViaService: [a, b]}``) expands to one
grant per value, so narrowing a list reads as a removal, not as a new grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from provisioning.analysis import iam_data
from provisioning.analysis.evaluator import statements_of

Condition = tuple[str, str, tuple[str, ...]]  # (operator, key, values)
# Operators whose values are alternatives: one value per grant says the same thing.
_ANY_OF_OPERATORS = frozenset(
    {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike", "Bool"}
)
SUBJECT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True, order=True)
class IdentityGrant:
    action: str
    resource: str
    conditions: tuple[Condition, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "resource": self.resource,
            "conditions": conditions_to_list(self.conditions),
        }


@dataclass(frozen=True, order=True)
class TrustGrant:
    provider: str
    namespace: str
    service_account: str
    audience: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "namespace": self.namespace,
            "service_account": self.service_account,
            "audience": self.audience,
        }


@dataclass(frozen=True, order=True)
class KeyGrant:
    principal: str
    action: str
    conditions: tuple[Condition, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "action": self.action,
            "conditions": conditions_to_list(self.conditions),
        }


@dataclass(frozen=True)
class WorkspaceGrants:
    identity: frozenset[IdentityGrant] = field(default_factory=frozenset)
    trust: frozenset[TrustGrant] = field(default_factory=frozenset)
    key: frozenset[KeyGrant] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.identity or self.trust or self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "identity": [g.to_dict() for g in sorted(self.identity)],
            "trust": [g.to_dict() for g in sorted(self.trust)],
            "key": [g.to_dict() for g in sorted(self.key)],
        }


EMPTY = WorkspaceGrants()


def conditions_to_list(conditions: Iterable[Condition]) -> list[dict[str, Any]]:
    return [{"operator": op, "key": key, "values": list(values)} for op, key, values in conditions]


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list | tuple) else [value]
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in values]


def expanded_conditions(block: Mapping[str, Any] | None) -> list[tuple[Condition, ...]]:
    """Every combination of single alternatives; keys of other operators keep all their values."""
    choices: list[list[Condition]] = []
    for operator, keys in sorted((block or {}).items()):
        for key, values in sorted(keys.items()):
            listed = tuple(sorted(_listed(values)))
            if operator in _ANY_OF_OPERATORS and len(listed) > 1:
                choices.append([(operator, key, (v,)) for v in listed])
            else:
                choices.append([(operator, key, listed)])
    return [tuple(combo) for combo in product(*choices)]


def _allow_statements(policy: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if not policy:
        return []
    return [s for _, s in statements_of(policy) if s.get("Effect") == "Allow"]


def identity_grants(policy: Mapping[str, Any] | None) -> frozenset[IdentityGrant]:
    grants = set()
    for statement in _allow_statements(policy):
        for conditions in expanded_conditions(statement.get("Condition")):
            for action, resource in product(
                _listed(statement.get("Action")), _listed(statement.get("Resource"))
            ):
                if iam_data.grants_on(action, resource):
                    grants.add(IdentityGrant(action, resource, conditions))
    return frozenset(grants)


def _principals(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [p for kind in sorted(value) for p in _listed(value[kind])]
    return _listed(value)


def key_grants(policy: Mapping[str, Any] | None) -> frozenset[KeyGrant]:
    grants = set()
    for statement in _allow_statements(policy):
        principals = _principals(statement.get("Principal"))
        for conditions in expanded_conditions(statement.get("Condition")):
            for principal, action in product(principals, _listed(statement.get("Action"))):
                grants.add(KeyGrant(principal, action, conditions))
    return frozenset(grants)


def _condition_values(block: Mapping[str, Any], suffix: str) -> list[str]:
    """Values of every condition key ending in ``:sub`` / ``:aud``, under any operator."""
    return [
        value
        for keys in block.values()
        if isinstance(keys, Mapping)
        for key, values in keys.items()
        if str(key).endswith(suffix)
        for value in _listed(values)
    ]


def split_subject(subject: str) -> tuple[str, str]:
    """``system:serviceaccount:<ns>:<sa>`` -> (ns, sa); anything else is kept whole as the sa."""
    if subject.startswith(SUBJECT_PREFIX):
        namespace, _, account = subject.removeprefix(SUBJECT_PREFIX).partition(":")
        return namespace, account
    return "", subject


def trust_grants(policy: Mapping[str, Any] | None) -> frozenset[TrustGrant]:
    grants = set()
    for statement in _allow_statements(policy):
        principal = statement.get("Principal")
        providers = _listed(principal.get("Federated")) if isinstance(principal, Mapping) else []
        block = statement.get("Condition") or {}
        subjects = _condition_values(block, ":sub") or ["*"]
        audiences = _condition_values(block, ":aud") or ["*"]
        for provider, subject, audience in product(providers, subjects, audiences):
            namespace, account = split_subject(subject)
            grants.add(TrustGrant(provider, namespace, account, audience))
    return frozenset(grants)


def workspace_grants(policies: Mapping[str, Any] | None) -> WorkspaceGrants:
    """The grants of a ``render_policies`` document (None, a decommission, grants nothing)."""
    if not policies:
        return EMPTY
    return WorkspaceGrants(
        identity=identity_grants(policies.get("identity_policy")),
        trust=trust_grants(policies.get("trust_policy")),
        key=key_grants(policies.get("key_policy")),
    )
