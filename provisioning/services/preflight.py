"""Pre-flight of a plan: every name the plan would create must be free in AWS.

The plan says exactly what Terraform will create (pure ``create`` actions; a replacement re-uses
a name the workspace already holds). A name that already exists in AWS (another account's bucket,
a table made by hand, a leftover of a failed run) would make the apply fail half-way, after the
role and key exist. Failing the plan instead leaves nothing created and says what to rename.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from provisioning.aws import AccountSession, error_code

_FREE_CODES = {
    "aws_s3_bucket": {"404", "NoSuchBucket", "NotFound"},
    "aws_dynamodb_table": {"ResourceNotFoundException"},
    "aws_iam_role": {"NoSuchEntity"},
}
_DENIED = {"AccessDenied", "AccessDeniedException", "403"}
_WHAT = {
    "aws_s3_bucket": "S3 bucket",
    "aws_dynamodb_table": "DynamoDB table",
    "aws_iam_role": "IAM role",
    "aws_kms_alias": "KMS alias",
}


def planned_creations(show: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(resource type, physical name, address) of every named resource the plan creates."""
    found = []
    for change in show.get("resource_changes", []):
        kind, body = change.get("type", ""), change.get("change") or {}
        if kind not in _WHAT or body.get("actions") != ["create"]:
            continue
        after = body.get("after") or {}
        name = after.get("bucket") if kind == "aws_s3_bucket" else after.get("name")
        if isinstance(name, str) and name:
            found.append((kind, name, change.get("address", "")))
    return found


def preflight_taken_names(*, show: dict[str, Any], aws: AccountSession) -> list[str]:
    """A message per name the plan would create that AWS already holds."""
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = aws.client(service)
        return clients[service]

    messages = []
    for kind, name, address in planned_creations(show):
        if _exists(kind, name, client):
            messages.append(
                f"The {_WHAT[kind]} name '{name}' ({address}) already exists in AWS, outside "
                "this workspace's state"
                + (
                    " (S3 bucket names are global across all accounts: rename the resource or "
                    "set S3_BUCKET_NAME_SUFFIX)"
                    if kind == "aws_s3_bucket"
                    else "; rename the resource, or delete or import what holds the name"
                )
                + "."
            )
    return messages


def _exists(kind: str, name: str, client: Callable[[str], Any]) -> bool:
    try:
        if kind == "aws_s3_bucket":
            client("s3").head_bucket(Bucket=name)
        elif kind == "aws_dynamodb_table":
            client("dynamodb").describe_table(TableName=name)
        elif kind == "aws_iam_role":
            client("iam").get_role(RoleName=name)
        else:
            return _alias_exists(client("kms"), name)
    except ClientError as exc:
        if error_code(exc) in _FREE_CODES[kind]:
            return False
        if kind == "aws_s3_bucket" and error_code(exc) in {"403", "AccessDenied"}:
            return True  # someone else's bucket
        if error_code(exc) in _DENIED:
            # A deployment role scoped to the portal's own names may not read a name it does not
            # hold yet (IAM authorizes GetRole of a missing role against its path-less ARN): the
            # pre-flight cannot tell, and the apply would still fail clearly on a taken name.
            return False
        raise
    return True


def _alias_exists(kms: Any, name: str) -> bool:
    for page in kms.get_paginator("list_aliases").paginate():
        if any(alias["AliasName"] == name for alias in page["Aliases"]):
            return True
    return False


# A bucket listing stops here: the reviewer needs "it holds data, at least this much", and a
# destroy plan must not spend minutes paging through millions of keys.
MAX_LISTED_OBJECTS = 1000


def data_deletions(show: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's resource changes that delete a table or bucket (destroyed or replaced)."""
    return [
        change
        for change in show.get("resource_changes", [])
        if change.get("type") in ("aws_dynamodb_table", "aws_s3_bucket")
        and "delete" in ((change.get("change") or {}).get("actions") or [])
    ]


def data_at_risk(*, show: dict[str, Any], aws: AccountSession) -> list[dict[str, Any]]:
    """What each table and bucket the plan deletes holds: items and bytes (DescribeTable, which
    AWS refreshes about every six hours), object versions (one bounded listing)."""
    found: list[dict[str, Any]] = []
    for change in data_deletions(show):
        kind, body = change["type"], change.get("change") or {}
        before = body.get("before") or {}
        entry = {
            "address": change.get("address", ""),
            "kind": _WHAT[kind],
            "action": "replace" if "create" in (body.get("actions") or []) else "delete",
        }
        if kind == "aws_dynamodb_table":
            entry.update(_table_contents(before.get("name", ""), aws))
        else:
            entry.update(_bucket_contents(before.get("bucket", ""), aws))
        found.append(entry)
    return found


def _table_contents(name: str, aws: AccountSession) -> dict[str, Any]:
    try:
        table = aws.client("dynamodb").describe_table(TableName=name)["Table"]
    except ClientError as exc:
        return {"name": name, "error": error_code(exc) or "unreadable"}
    return {
        "name": name,
        "items": int(table.get("ItemCount", 0)),
        "bytes": int(table.get("TableSizeBytes", 0)),
        "deletion_protection": bool(table.get("DeletionProtectionEnabled", False)),
    }


def _bucket_contents(name: str, aws: AccountSession) -> dict[str, Any]:
    s3 = aws.client("s3")
    try:
        page = s3.list_object_versions(Bucket=name, MaxKeys=MAX_LISTED_OBJECTS)
    except ClientError as exc:
        return {"name": name, "error": error_code(exc) or "unreadable"}
    versions = page.get("Versions", []) + page.get("DeleteMarkers", [])
    return {
        "name": name,
        "objects": len(versions),
        "bytes": sum(int(v.get("Size", 0)) for v in page.get("Versions", [])),
        "truncated": bool(page.get("IsTruncated")),
    }


def holds_data(entries: list[dict[str, Any]]) -> bool:
    return any(e.get("items") or e.get("objects") or e.get("error") for e in entries)


def protected_refusals(entries: list[dict[str, Any]]) -> list[str]:
    """The steps to take for each protected table a destroy plan would delete."""
    return [
        f"The DynamoDB table '{e['name']}' ({e['address']}) has deletion protection on, so it "
        "cannot be destroyed. If its data may really go: back it up if needed, propose a change "
        "setting 'deletion_protection': false for this table, have it reviewed and applied, then "
        "plan again."
        for e in entries
        if e.get("deletion_protection")
    ]
