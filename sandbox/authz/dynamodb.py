"""DynamoDB requests as IAM sees them: `dynamodb:<Operation>` on the table (or index) ARN.

Batch operations check their action on every table they name; transactions check the action
of each item (TransactWriteItems' Put is dynamodb:PutItem). Operations that name no table
(ListTables, DescribeLimits) are checked against "*", as AWS does.
"""

from __future__ import annotations

from typing import Any

from sandbox.authz.checks import Caller, Check
from sandbox.aws_request import AwsRequest

_TRANSACT_WRITE_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def checks(request: AwsRequest, caller: Caller) -> list[Check]:
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
