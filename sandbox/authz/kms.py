"""KMS requests as IAM sees them: `kms:<Operation>` on the key's ARN, with the key policy.

A key policy is always required (`resource_policy_required`): an identity policy alone never
grants use of a key unless the key policy delegates to the account. Direct calls carry no
`kms:ViaService`; calls S3 makes on the caller's behalf are built in `sandbox.authz.s3`.
"""

from __future__ import annotations

from typing import Any

from sandbox import moto_state
from sandbox.authz.checks import Caller, Check
from sandbox.aws_request import AwsRequest

_ALIAS_OPERATIONS = ("CreateAlias", "UpdateAlias", "DeleteAlias")


def checks(request: AwsRequest, caller: Caller) -> list[Check]:
    body = request.json_body()
    operation = request.target
    context = {"kms:CallerAccount": caller.account_id}
    if operation in _ALIAS_OPERATIONS:
        return _alias_checks(request, caller, operation, body, context)
    if operation == "ReEncrypt":
        source = _key(request, caller, body.get("SourceKeyId"), body.get("CiphertextBlob"))
        target = _key(request, caller, body.get("DestinationKeyId"), None)
        return [
            *_key_checks("kms:ReEncryptFrom", source, context),
            *_key_checks("kms:ReEncryptTo", target, context),
        ]
    key_id = body.get("KeyId")
    blob = body.get("CiphertextBlob") if operation == "Decrypt" else None
    if key_id is None and blob is None:
        return [Check(f"kms:{operation}", "*", context=context)]  # CreateKey, ListKeys, ...
    return _key_checks(f"kms:{operation}", _key(request, caller, key_id, blob), context)


def key_check(action: str, key: moto_state.KmsKey, context: dict[str, str]) -> Check:
    return Check(action, key.arn, key.policy, resource_policy_required=True, context=context)


def _key_checks(action: str, key: moto_state.KmsKey | None, context: dict[str, str]) -> list[Check]:
    # An unknown key is left to moto, which answers NotFoundException as KMS does.
    return [key_check(action, key, context)] if key is not None else []


def _key(request: AwsRequest, caller: Caller, key_id: Any, blob: Any) -> moto_state.KmsKey | None:
    if key_id:
        return moto_state.kms_key(caller.account_id, request.region, str(key_id))
    if blob:
        return moto_state.kms_key_of_ciphertext(caller.account_id, request.region, str(blob))
    return None


def _alias_checks(
    request: AwsRequest,
    caller: Caller,
    operation: str,
    body: dict[str, Any],
    context: dict[str, str],
) -> list[Check]:
    """Alias operations need the permission on the alias and on the key it points to."""
    alias = str(body.get("AliasName", ""))
    alias_arn = (
        alias
        if alias.startswith("arn:")
        else f"arn:{caller.partition}:kms:{request.region}:{caller.account_id}:{alias}"
    )
    target = body.get("TargetKeyId") or alias
    key = moto_state.kms_key(caller.account_id, request.region, str(target))
    return [
        Check(f"kms:{operation}", alias_arn, context=context),
        *_key_checks(f"kms:{operation}", key, context),
    ]
