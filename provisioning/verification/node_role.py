"""The node role audit: worker nodes hold only what EKS nodes need, never service permissions.

IRSA only isolates services if the node role does not hand every pod (through the instance
metadata) the access the portal keeps from them. The audit reads the node role's attached managed
and inline policies and flags everything beyond the EKS worker baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from provisioning.aws import AccountSession
from provisioning.verification.simulate import managed_document

# The AWS-managed policies an EKS node needs, and the services each may grant (used to recognise a
# same-named customer-managed stand-in, as the sandbox creates when AWS's policies are not loaded).
BASELINE_SERVICES: Mapping[str, frozenset[str]] = {
    "AmazonEKSWorkerNodePolicy": frozenset({"ec2", "eks"}),
    "AmazonEKS_CNI_Policy": frozenset({"ec2"}),
    "AmazonEC2ContainerRegistryReadOnly": frozenset({"ecr"}),
}
OPTIONAL_SERVICES: Mapping[str, frozenset[str]] = {
    "AmazonSSMManagedInstanceCore": frozenset({"ssm", "ssmmessages", "ec2messages"}),
}


def audit_node_role(*, role_arn: str, aws: AccountSession) -> dict[str, Any]:
    """Read the role and classify it; the caller stores the result."""
    iam = aws.client("iam")
    name = role_arn.rsplit("/", 1)[-1]
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    policies = [
        {
            "arn": a["PolicyArn"],
            "name": a["PolicyName"],
            "document": None
            if _aws_managed(a["PolicyArn"])
            else managed_document(iam, a["PolicyArn"]),
        }
        for a in attached
    ]
    inline = iam.list_role_policies(RoleName=name)["PolicyNames"]
    return classify_node_role(role_arn=role_arn, attached=policies, inline=inline)


def _aws_managed(arn: str) -> bool:
    return arn.split(":")[4:5] == ["aws"]


def actions_of(document: Mapping[str, Any] | None) -> list[str]:
    statements = (document or {}).get("Statement", [])
    statements = [statements] if isinstance(statements, Mapping) else statements
    found: list[str] = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        value = statement.get("Action", statement.get("NotAction", []))
        found += [value] if isinstance(value, str) else list(value)
    return found


def classify_node_role(
    *, role_arn: str, attached: Sequence[Mapping[str, Any]], inline: Sequence[str]
) -> dict[str, Any]:
    """Pure: ``clean`` when only baseline policies are attached and nothing is inline."""
    known = {**BASELINE_SERVICES, **OPTIONAL_SERVICES}
    flagged: list[dict[str, str]] = []
    for policy in attached:
        services = known.get(policy["name"])
        if services is None:
            flagged.append({"policy": policy["arn"], "reason": "not part of the EKS node baseline"})
        elif policy.get("document") is not None:
            extra = sorted(
                {a for a in actions_of(policy["document"]) if a.split(":", 1)[0] not in services}
            )
            if extra:
                flagged.append(
                    {
                        "policy": policy["arn"],
                        "reason": "named like the baseline but also grants " + ", ".join(extra),
                    }
                )
    for name in inline:
        flagged.append(
            {
                "policy": f"inline:{name}",
                "reason": "inline policies are not part of the node baseline",
            }
        )
    missing = sorted(set(BASELINE_SERVICES) - {p["name"] for p in attached})
    return {
        "role_arn": role_arn,
        "status": "flagged" if flagged else "clean",
        "attached": sorted(p["arn"] for p in attached),
        "inline": sorted(inline),
        "flagged": flagged,
        "missing_baseline": missing,
    }
