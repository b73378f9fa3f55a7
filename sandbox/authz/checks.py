"""The unit of authorization: one action on one resource, with the resource's own policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Policy = dict[str, Any]
ContextValues = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True)
class Caller:
    """The principal behind STS-issued credentials (or an IAM user's own access key)."""

    role_arn: str  # the role, or the user for a user's key: whose policies apply
    session_arn: str
    account_id: str
    partition: str
    principal_type: str = "AssumedRole"


@dataclass(frozen=True)
class Check:
    action: str
    resource: str
    resource_policy: Policy | None = None
    # KMS: the key policy must allow too (directly or by delegating to the account root).
    resource_policy_required: bool = False
    context: ContextValues = field(default_factory=dict)
