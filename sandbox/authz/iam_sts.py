"""IAM and STS requests (query protocol) as IAM sees them: `iam:<Action>` on the entity's ARN.

The resource is derived from the parameters that name an entity (RoleName, UserName, PolicyArn,
...), with the path a new role or policy would get. An action that names no entity is checked
against "*". `sts:GetCallerIdentity` needs no permission in AWS and is never refused.
"""

from __future__ import annotations

from sandbox import moto_state
from sandbox.authz.checks import Caller, Check
from sandbox.aws_request import AwsRequest

# Parameters that name an existing entity, and how its ARN is spelled.
_ENTITY_PARAMS = (
    ("RoleName", "role"),
    ("UserName", "user"),
    ("GroupName", "group"),
    ("InstanceProfileName", "instance-profile"),
)
_ARN_PARAMS = ("PolicyArn", "OpenIDConnectProviderArn", "SAMLProviderArn", "PolicySourceArn")
_ALWAYS_ALLOWED_STS = frozenset({"GetCallerIdentity"})
_ATTACH_ACTIONS = frozenset(
    {
        "AttachRolePolicy",
        "DetachRolePolicy",
        "AttachUserPolicy",
        "DetachUserPolicy",
        "AttachGroupPolicy",
        "DetachGroupPolicy",
        "PutRolePermissionsBoundary",
        "PutUserPermissionsBoundary",
    }
)


def iam_checks(request: AwsRequest, caller: Caller) -> list[Check]:
    params = request.params()
    action = params.get("Action", "")
    return [Check(f"iam:{action}", _iam_resource(params, caller), context=_iam_context(params))]


def _iam_context(params: dict[str, str]) -> dict[str, str]:
    """The IAM condition keys a worker's policy scopes role changes with."""
    context = {}
    if params.get("PermissionsBoundary"):
        context["iam:PermissionsBoundary"] = params["PermissionsBoundary"]
    if params.get("Action") in _ATTACH_ACTIONS and params.get("PolicyArn"):
        context["iam:PolicyARN"] = params["PolicyArn"]
    return context


def _iam_resource(params: dict[str, str], caller: Caller) -> str:
    prefix = f"arn:{caller.partition}:iam::{caller.account_id}:"
    path = params.get("Path", "/")
    if params.get("Action") == "CreatePolicy":
        return f"{prefix}policy{path}{params.get('PolicyName', '')}"
    # Attaching a policy (or a boundary) changes the role: the role is the resource and the
    # policy's ARN a condition key, as in AWS's service authorization reference.
    entities = params.get("Action") in _ATTACH_ACTIONS
    for name in () if entities else _ARN_PARAMS:
        if params.get(name):
            return params[name]
    for name, kind in _ENTITY_PARAMS:
        if params.get(name):
            return (
                _existing_arn(prefix, kind, params[name]) or f"{prefix}{kind}{path}{params[name]}"
            )
    return "*"


def _existing_arn(prefix: str, kind: str, name: str) -> str | None:
    """An existing role or user's ARN carries its path, which the request does not name."""
    if kind not in ("role", "user"):
        return None
    for candidate in moto_state.entity_arns(prefix, kind):
        if candidate.rsplit("/", 1)[-1] == name:
            return candidate
    return None


def sts_checks(request: AwsRequest, caller: Caller) -> list[Check]:
    params = request.params()
    action = params.get("Action", "")
    if action in _ALWAYS_ALLOWED_STS:
        return []
    return [Check(f"sts:{action}", params.get("RoleArn") or "*")]
