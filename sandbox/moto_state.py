"""Read-only lookups into moto's in-memory backends, for the enforcement layer.

This module runs inside the sandbox's server process (sandbox.moto_app), next to moto's backends:
it reads the same objects moto's own handlers serve, so a role changed by Terraform a moment ago
is what the next request is judged against. Nothing here writes to a backend.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass
from typing import Any

from moto.dynamodb.models import dynamodb_backends
from moto.iam.models import get_account_id_from, iam_backends
from moto.kms.models import kms_backends
from moto.kms.utils import _deserialize_ciphertext_blob
from moto.s3.models import s3_backends
from moto.sts.models import AssumedRole, sts_backends
from moto.utilities.utils import get_partition

Policy = dict[str, Any]


@dataclass(frozen=True)
class PrincipalPolicies:
    """What IAM evaluates for a role or user: identity policies and its boundary."""

    arn: str
    account_id: str
    identity: tuple[tuple[str, str, Policy], ...]  # (source id, source type, document)
    boundary: Policy | None

    @property
    def documents(self) -> list[Policy]:
        return [document for _, _, document in self.identity]


@dataclass(frozen=True)
class KmsKey:
    arn: str
    policy: Policy


def assumed_role_for(access_key_id: str, region: str) -> AssumedRole | None:
    """The STS session that issued this access key, or None for any other key."""
    account_id = get_account_id_from(access_key_id)
    backend = sts_backends[account_id][get_partition(region)]
    return backend.get_assumed_role_from_access_key(access_key_id)


def user_for_access_key(access_key_id: str) -> str | None:
    """The ARN of the IAM user that owns this long-term key, or None (the admin ``testing`` key
    belongs to no user: it stays unenforced, for set-up)."""
    account_id = get_account_id_from(access_key_id)
    for partition_backend in list(iam_backends[account_id].values()):
        for user in list(partition_backend.users.values()):
            if any(key.access_key_id == access_key_id for key in user.access_keys):
                return str(user.arn)
    return None


def account_of_arn(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def principal_policies(arn: str) -> PrincipalPolicies | None:
    """A role's or user's attached managed, inline (and group) policies and boundary."""
    account_id = account_of_arn(arn)
    if not account_id.isdigit():
        return None
    backend = iam_backends[account_id][arn.split(":")[1] or "aws"]
    entity = _role_or_user(backend, arn)
    if entity is None:
        return None
    owner = "role" if ":role/" in arn else "user"
    sources = [*_managed(entity), *_inline(entity, owner)]
    if owner == "user":
        for group in backend.get_groups_for_user(entity.name):
            sources += [*_managed(group), *_inline(group, "group")]
    boundary_arn = getattr(entity, "permissions_boundary_arn", None)
    return PrincipalPolicies(
        arn=arn,
        account_id=account_id,
        identity=tuple(sources),
        boundary=managed_policy_document(backend, boundary_arn) if boundary_arn else None,
    )


def _role_or_user(backend: Any, arn: str) -> Any:
    for entity in [*backend.get_roles(), *backend.users.values()]:
        if entity.arn == arn:
            return entity
    return None


def _managed(entity: Any) -> list[tuple[str, str, Policy]]:
    found = []
    for policy in list(entity.managed_policies.values()):
        kind = "aws-managed" if ":iam::aws:policy/" in policy.arn else "user-managed"
        found.append((policy.name, kind, _default_document(policy)))
    return found


def _inline(entity: Any, owner: str) -> list[tuple[str, str, Policy]]:
    return [(name, owner, _parse(text)) for name, text in list(entity.policies.items())]


def managed_policy_document(backend: Any, policy_arn: str) -> Policy | None:
    # moto keeps AWS-managed policies (when loaded) in the same dict as the account's own.
    policy = backend.managed_policies.get(policy_arn)
    return _default_document(policy) if policy is not None else None


def _default_document(policy: Any) -> Policy:
    for version in policy.versions:
        if version.is_default:
            return _parse(version.document)
    return {}


def _parse(document: Any) -> Policy:
    if isinstance(document, dict):
        return document
    try:
        parsed = json.loads(document)
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def oidc_provider(account_id: str, partition: str, issuer: str) -> Any:
    """The account's IAM OIDC provider for `issuer` (no scheme), or None."""
    backend = iam_backends[account_id][partition]
    return backend.open_id_providers.get(
        f"arn:{partition}:iam::{account_id}:oidc-provider/{issuer}"
    )


def kms_key(account_id: str, region: str, key_id: str) -> KmsKey | None:
    """Resolve a key id, key ARN, alias name or alias ARN to the key (None when unknown)."""
    if key_id.startswith("arn:"):
        parts = key_id.split(":")
        region, account_id = parts[3], parts[4]
    backend = kms_backends[account_id][region]
    try:
        raw_id = backend.any_id_to_key_id(key_id)
    except (KeyError, TypeError, AttributeError):
        return None
    key = backend.keys.get(raw_id) if raw_id else None
    if key is None:
        return None
    return KmsKey(arn=key.arn, policy=_parse(key.policy))


def kms_key_of_ciphertext(account_id: str, region: str, blob_b64: str) -> KmsKey | None:
    """The key a (moto-made) ciphertext blob was encrypted under, as KMS reads it from the blob."""
    try:
        blob = base64.b64decode(blob_b64, validate=True)
        key_id = _deserialize_ciphertext_blob(blob).key_id
    except (binascii.Error, ValueError, struct.error):
        # A malformed blob: let moto answer it with its own InvalidCiphertextException.
        return None
    return kms_key(account_id, region, key_id)


def bucket(name: str) -> Any:
    """The bucket wherever it lives (S3 names are global), or None."""
    located = s3_backends.bucket_accounts.get(name)
    if located is None:
        return None
    partition, account_id = located
    return s3_backends[account_id][partition].buckets.get(name)


def bucket_policy(name: str) -> Policy | None:
    found = bucket(name)
    if found is None or not found.policy:
        return None
    return _parse(found.policy.decode())


def bucket_default_kms_key_id(name: str) -> str | None:
    found = bucket(name)
    rule = (found.encryption or {}).get("Rule", {}) if found is not None else {}
    default = rule.get("ApplyServerSideEncryptionByDefault", {})
    if default.get("SSEAlgorithm") != "aws:kms":
        return None
    return default.get("KMSMasterKeyID")


def object_kms_key_id(bucket_name: str, key_name: str) -> str | None:
    found = bucket(bucket_name)
    if found is None or key_name not in found.keys:
        return None
    stored = found.keys[key_name]
    if getattr(stored, "encryption", None) != "aws:kms":
        return None
    return getattr(stored, "kms_key_id", None)


def table_customer_key_id(account_id: str, region: str, table_name: str) -> str | None:
    """The customer managed KMS key a table is encrypted with; None for an unknown table, one
    without SSE-KMS or one under the AWS managed aws/dynamodb key (which needs no grant)."""
    table = dynamodb_backends[account_id][region].tables.get(table_name)
    sse = getattr(table, "sse_specification", None) or {}
    key_id = sse.get("KMSMasterKeyId") if sse.get("Enabled") is True else None
    if not key_id:
        return None
    backend = kms_backends[account_id][region]
    try:
        raw_id = backend.any_id_to_key_id(str(key_id))
    except (KeyError, TypeError, AttributeError):
        return None
    key = backend.keys.get(raw_id) if raw_id else None
    return key.arn if key is not None and key.key_manager == "CUSTOMER" else None


def entity_arns(prefix: str, kind: str) -> list[str]:
    """ARNs of the roles or users of the account that `prefix` (arn:<p>:iam::<acct>:) names."""
    _, partition, _, _, account_id, _ = (prefix + "x").split(":", 5)
    backend = iam_backends[account_id][partition]
    entities = backend.get_roles() if kind == "role" else list(backend.users.values())
    return [entity.arn for entity in entities]


def role_trust_policy(role_arn: str) -> Policy | None:
    """The role's trust (assume-role) policy, or None when there is no such role."""
    account_id = account_of_arn(role_arn)
    if not account_id.isdigit():
        return None
    backend = iam_backends[account_id][role_arn.split(":")[1] or "aws"]
    for role in backend.get_roles():
        if role.arn == role_arn:
            return _parse(role.assume_role_policy_document)
    return None
