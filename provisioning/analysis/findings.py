"""Lint findings and the rule table (ids, severities, what each rule means). Pure data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

HIGH, MEDIUM, LOW = "high", "medium", "low"
SEVERITIES = (HIGH, MEDIUM, LOW)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("IRSA001", HIGH, "Every action exists in IAM"),
        Rule("IRSA002", MEDIUM, "Each action applies to a resource type of its statement's ARNs"),
        Rule("IRSA003", HIGH, "No wildcard in actions"),
        Rule(
            "IRSA004", HIGH, "No wildcard in resources beyond the catalog's sub-resource patterns"
        ),
        Rule("IRSA005", HIGH, "No escalation or administration action for the workload"),
        Rule("IRSA006", HIGH, "No Allow with NotAction, NotResource or NotPrincipal"),
        Rule("IRSA007", HIGH, "Policy fits IAM's size limit"),
        Rule("IRSA008", LOW, "Each resource is used by an action of its statement"),
        Rule("IRSA009", MEDIUM, "Identity policies name no Principal"),
        Rule("IRSA010", HIGH, "Trust: Federated is the cluster's own OIDC provider, nothing else"),
        Rule("IRSA011", HIGH, "Trust: Action is exactly sts:AssumeRoleWithWebIdentity"),
        Rule("IRSA012", HIGH, "Trust: aud is sts.amazonaws.com under StringEquals"),
        Rule("IRSA013", HIGH, "Trust: sub names service accounts under StringEquals, no wildcard"),
        Rule("IRSA014", HIGH, "No Principal '*' in trust or key policies"),
        Rule("IRSA015", MEDIUM, "Trust: condition keys use the provider's own issuer"),
        Rule("IRSA016", HIGH, "Key: only the account root and the service role are principals"),
        Rule("IRSA017", MEDIUM, "Key: the service role's use is limited by kms:ViaService"),
    )
}


@dataclass(frozen=True, order=True)
class Finding:
    rule: str
    severity: str  # HIGH | MEDIUM | LOW
    message: str
    location: str  # e.g. "identity_policy.Statement[2].Action[0]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "location": self.location,
        }


def finding(rule: str, message: str, location: str) -> Finding:
    return Finding(rule, RULES[rule].severity, message, location)


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that block approval (severity high)."""
    return [f for f in findings if f.severity == HIGH]


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for f in findings:
        counts[f.severity] += 1
    return counts
