"""Lint rules for principals: the IRSA trust policy and the KMS key policy's principals. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from provisioning.analysis.findings import Finding, finding
from provisioning.iam.policies import STS_AUDIENCE, WEB_IDENTITY_ACTION

_ROOT = re.compile(r"^(arn:[a-z-]+:iam::\d{12}:root|\d{12})$")
_OIDC_PROVIDER = re.compile(r"^arn:[a-z-]+:iam::\d{12}:oidc-provider/(?P<issuer>.+)$")
_SUBJECT = re.compile(r"^system:serviceaccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9][-.a-z0-9]*$")
PRINCIPAL_KINDS = ("AWS", "Federated", "Service", "CanonicalUser")


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, list | tuple) else [value])]


def principal_values(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [p for kind in value for p in _listed(value[kind])]
    return _listed(value)


def is_account_root(values: list[str]) -> bool:
    return bool(values) and all(_ROOT.match(v) for v in values)


def _wildcard_principal(where: str, statement: Mapping[str, Any]) -> list[Finding]:
    if "*" not in principal_values(statement.get("Principal")):
        return []
    message = "Principal '*' lets any AWS identity use this; name the exact principal."
    return [finding("IRSA014", message, f"{where}.Principal")]


def _provider(where: str, statement: Mapping[str, Any], expected: str | None) -> list[Finding]:
    principal = statement.get("Principal")
    loc = f"{where}.Principal"
    if not isinstance(principal, Mapping) or set(principal) != {"Federated"}:
        message = "Trust only the cluster's OIDC provider: Principal must be {'Federated': <arn>}."
        return [finding("IRSA010", message, loc)]
    providers = _listed(principal["Federated"])
    if len(providers) != 1:
        return [finding("IRSA010", "Trust exactly one OIDC provider, the cluster's.", loc)]
    if expected is not None and providers[0] != expected:
        message = f"Federated is '{providers[0]}', not this cluster's provider '{expected}'."
        return [finding("IRSA010", message, f"{loc}.Federated")]
    if not _OIDC_PROVIDER.match(providers[0]):
        message = f"'{providers[0]}' is not an IAM OIDC provider ARN."
        return [finding("IRSA010", message, f"{loc}.Federated")]
    return []


def _action(where: str, statement: Mapping[str, Any]) -> list[Finding]:
    if _listed(statement.get("Action")) == [WEB_IDENTITY_ACTION]:
        return []
    message = f"Action must be exactly {WEB_IDENTITY_ACTION} (the pod's web identity token)."
    return [finding("IRSA011", message, f"{where}.Action")]


def _issuer(statement: Mapping[str, Any]) -> str | None:
    principal = statement.get("Principal")
    federated = _listed(principal.get("Federated")) if isinstance(principal, Mapping) else []
    match = _OIDC_PROVIDER.match(federated[0]) if len(federated) == 1 else None
    return match["issuer"] if match else None


def _condition_key(operator: str, key: str, values: list[str], loc: str) -> list[Finding]:
    claim = key.rsplit(":", 1)[-1]
    found = []
    if claim == "aud" and (operator != "StringEquals" or values != [STS_AUDIENCE]):
        message = f"The aud condition must be StringEquals '{STS_AUDIENCE}' and nothing else."
        found.append(finding("IRSA012", message, loc))
    if claim == "sub" and operator != "StringEquals":
        message = f"The sub condition uses {operator}; use StringEquals with exact subjects."
        found.append(finding("IRSA013", message, loc))
    if claim == "sub" and operator == "StringEquals":
        for value in values:
            if "*" in value or "?" in value or not _SUBJECT.match(value):
                message = (
                    f"'{value}' is not an exact subject; name each service account as "
                    "system:serviceaccount:<namespace>:<name>."
                )
                found.append(finding("IRSA013", message, loc))
    return found


def _conditions(where: str, statement: Mapping[str, Any]) -> list[Finding]:
    block = statement.get("Condition")
    block = block if isinstance(block, Mapping) else {}
    issuer = _issuer(statement)
    found: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for operator, keys in block.items():
        for key, value in (keys if isinstance(keys, Mapping) else {}).items():
            loc = f"{where}.Condition.{operator}.{key}"
            prefix, _, claim = str(key).rpartition(":")
            seen.add((operator, claim))
            found += _condition_key(operator, str(key), _listed(value), loc)
            if claim in ("sub", "aud") and issuer is not None and prefix != issuer:
                message = f"'{key}' is not a claim of the trusted provider's issuer {issuer}."
                found.append(finding("IRSA015", message, loc))
    if ("StringEquals", "aud") not in seen:
        message = f"No aud condition: require StringEquals <issuer>:aud = '{STS_AUDIENCE}'."
        found.append(finding("IRSA012", message, f"{where}.Condition"))
    if ("StringEquals", "sub") not in seen:
        message = "No StringEquals sub condition: any service account of the cluster could assume."
        found.append(finding("IRSA013", message, f"{where}.Condition"))
    return found


def check_trust_statement(
    where: str, statement: Mapping[str, Any], oidc_provider_arn: str | None
) -> list[Finding]:
    """IRSA010-015 for one Allow statement of a trust policy (Deny statements only narrow)."""
    if statement.get("Effect") != "Allow":
        return []
    found = _wildcard_principal(where, statement)
    if not found:
        found += _provider(where, statement, oidc_provider_arn)
    return found + _action(where, statement) + _conditions(where, statement)


def check_key_principals(
    where: str, statement: Mapping[str, Any], role_arn: str | None
) -> list[Finding]:
    """IRSA014/016/017: the account root administers, only the service role uses, via services."""
    if statement.get("Effect") != "Allow":
        return []
    found = _wildcard_principal(where, statement)
    values = principal_values(statement.get("Principal"))
    if found or is_account_root(values):
        return found
    if role_arn is not None:
        for value in values:
            if value != role_arn and not _ROOT.match(value):
                message = f"'{value}' may use this key; only the service role {role_arn} should."
                found.append(finding("IRSA016", message, f"{where}.Principal"))
    block = statement.get("Condition")
    keys = {str(k).lower() for ks in (block or {}).values() if isinstance(ks, Mapping) for k in ks}
    if "kms:viaservice" not in keys:
        message = "Limit the service role's key use with a kms:ViaService condition."
        found.append(finding("IRSA017", message, f"{where}.Condition"))
    return found
