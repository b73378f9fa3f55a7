"""A workspace's Terraform state lock in the S3 backend's DynamoDB table: report and release.

A run killed mid-apply (its worker and Terraform gone) leaves its lock item behind; every later
run of the workspace then fails with Terraform's lock error. The portal reads the item Terraform
wrote (lock id, who, when, which operation) so the workspace shows it, and an admin may release
it, which is what ``terraform force-unlock <id>`` does: delete the item, only if it still holds
that lock id. Refused while a run of the workspace is queued or running (that run may own the
lock), and audited. The pg backend's advisory locks end with the session that took them and
the local backend is for one machine, so both report no lock here.

The lock table lives in the portal's own account: it is read with the worker's own credentials,
as the backend does, not through a cluster's deployment role.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError
from django.conf import settings

from provisioning.aws import CLIENT_CONFIG
from provisioning.models import ACTIVE_RUN_STATUSES, Workspace
from provisioning.services.audit import audit_record
from provisioning.services.runs import RunConflict


@dataclass(frozen=True)
class StateLock:
    lock_id: str
    who: str
    created: str
    operation: str
    version: str
    path: str


def _table_and_key(workspace: Workspace) -> tuple[str, str] | None:
    from provisioning.terraform.context import workspace_backend  # late: reads settings

    backend = workspace_backend(workspace.state_key)
    if backend.kind != "s3":
        return None
    options = backend.options
    return options["dynamodb_table"], f"{options['bucket']}/{options['key']}"


def _dynamodb() -> Any:
    return boto3.client(
        "dynamodb",
        region_name=settings.AWS_REGION,
        endpoint_url=settings.AWS_ENDPOINT_URL or None,
        config=CLIENT_CONFIG,
    )


def workspace_state_lock(*, workspace: Workspace) -> StateLock | None:
    """The lock held on the workspace's state, as Terraform recorded it; None when unlocked."""
    where = _table_and_key(workspace)
    if where is None:
        return None
    table, lock_key = where
    item = _dynamodb().get_item(TableName=table, Key={"LockID": {"S": lock_key}}).get("Item")
    if not item or "Info" not in item:  # the item without Info holds the state's digest
        return None
    info = json.loads(item["Info"]["S"])
    return StateLock(
        lock_id=str(info.get("ID", "")),
        who=str(info.get("Who", "")),
        created=str(info.get("Created", "")),
        operation=str(info.get("Operation", "")),
        version=str(info.get("Version", "")),
        path=str(info.get("Path", lock_key)),
    )


def workspace_release_state_lock(*, actor: Any, workspace: Workspace, lock_id: str) -> StateLock:
    """Delete the lock item if it still holds ``lock_id``; refused while a run is active."""
    if workspace.runs.filter(status__in=ACTIVE_RUN_STATUSES).exists():
        raise RunConflict(
            f"Workspace {workspace} has a queued or running run, which may hold the lock; "
            "release it only once no run is active."
        )
    lock = workspace_state_lock(workspace=workspace)
    if lock is None or lock.lock_id != lock_id:
        raise RunConflict(f"Workspace {workspace} holds no state lock with id {lock_id}.")
    table, lock_key = _table_and_key(workspace) or ("", "")
    try:
        _dynamodb().delete_item(
            TableName=table,
            Key={"LockID": {"S": lock_key}},
            ConditionExpression="contains(Info, :id)",
            ExpressionAttributeValues={":id": {"S": lock_id}},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        raise RunConflict(f"The state lock of {workspace} changed meanwhile; look again.") from exc
    audit_record(
        actor=actor, action="workspace.state_lock_released", obj=workspace, data=asdict(lock)
    )
    return lock
