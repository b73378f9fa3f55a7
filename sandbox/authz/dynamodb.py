"""DynamoDB requests as IAM sees them: `dynamodb:<Operation>` on the table (or index) ARN.

Batch operations check their action on every table they name; transactions check the action
of each item (TransactWriteItems' Put is dynamodb:PutItem). Operations that name no table
(ListTables, DescribeLimits) are checked against "*", as AWS does.

A table encrypted with a customer managed key is read and written through that key: DynamoDB
calls KMS on the caller's behalf, so every item operation on it is a second check,
`kms:Decrypt` on the key with its key policy and `kms:ViaService = dynamodb.<region>.amazonaws.com`
(the AWS managed aws/dynamodb key needs no permission and is not checked).
"""

from __future__ import annotations

from typing import Any

from sandbox import moto_state
from sandbox.authz.checks import Caller, Check
from sandbox.authz.kms import key_check
from sandbox.aws_request import AwsRequest

_TRANSACT_WRITE_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


# The item operations: DynamoDB decrypts the table key for them, as the caller.
_ITEM_OPERATIONS = {
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
}


def checks(request: AwsRequest, caller: Caller) -> list[Check]:
    found = _table_checks(request, caller)
    if request.target not in _ITEM_OPERATIONS:
        return found
    return found + _key_checks(request, caller, {c.resource for c in found})


def _key_checks(request: AwsRequest, caller: Caller, resources: set[str]) -> list[Check]:
    context = {
        "kms:ViaService": f"dynamodb.{request.region}.amazonaws.com",
        "kms:CallerAccount": caller.account_id,
    }
    keys = {}
    for resource in resources:
        parts = resource.split(":", 5)
        if len(parts) != 6 or not parts[5].startswith("table/"):
            continue
        table = parts[5].split("/")[1]
        key_id = moto_state.table_customer_key_id(parts[4], parts[3], table)
        key = moto_state.kms_key(parts[4], parts[3], key_id) if key_id else None
        if key is not None:
            keys[key.arn] = key
    return [key_check("kms:Decrypt", key, context) for _, key in sorted(keys.items())]


def _table_checks(request: AwsRequest, caller: Caller) -> list[Check]:
    body = request.json_body()
    operation = request.target
    action = f"dynamodb:{operation}"

    def table(name: Any) -> str:
        name = str(name)
        if name.startswith("arn:"):
            return name
        return f"arn:{caller.partition}:dynamodb:{request.region}:{caller.account_id}:table/{name}"

    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Check(action, table(name)) for name in sorted(body.get("RequestItems") or {})]
    if operation == "TransactGetItems":
        return [
            Check("dynamodb:GetItem", table(item.get("Get", {}).get("TableName")))
            for item in body.get("TransactItems") or []
        ]
    if operation == "TransactWriteItems":
        return [
            Check(_TRANSACT_WRITE_ACTIONS[kind], table(detail.get("TableName")))
            for item in body.get("TransactItems") or []
            for kind, detail in item.items()
            if kind in _TRANSACT_WRITE_ACTIONS
        ]
    if "TableName" in body:
        resource = table(body["TableName"])
        if operation in ("Query", "Scan") and body.get("IndexName"):
            resource += f"/index/{body['IndexName']}"
        return [Check(action, resource)]
    for name in ("ResourceArn", "StreamArn"):  # tagging, resource policies, streams
        if name in body:
            return [Check(action, str(body[name]))]
    return [Check(action, "*")]
