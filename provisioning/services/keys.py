"""A destroyed workspace's KMS key: AWS only schedules its deletion (after the configured window,
``KMS_KEY_DELETION_WINDOW_DAYS``). The inventory shows the date; an admin may restore the key
within the window (for example to read a backup encrypted with it)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from provisioning.aws import AccountSession, error_code, session_for_cluster
from provisioning.models import Workspace
from provisioning.services.audit import audit_record

PENDING = "kms_key_pending_deletion"


class KeyRestoreRefused(Exception):
    """The key cannot be restored; the message says why."""


def key_pending_deletion(*, key_arn: str, aws: AccountSession) -> dict[str, Any]:
    """What the inventory keeps of a key a destroy scheduled for deletion."""
    try:
        meta = aws.client("kms").describe_key(KeyId=key_arn)["KeyMetadata"]
    except ClientError as exc:
        return {"arn": key_arn, "state": error_code(exc) or "unknown", "deletion_date": None}
    date = meta.get("DeletionDate")
    return {
        "arn": key_arn,
        "state": meta.get("KeyState", ""),
        "deletion_date": date.isoformat() if date else None,
    }


def workspace_key_restore(*, actor: Any, workspace: Workspace) -> None:
    """Cancel the key's scheduled deletion and enable it again; audited."""
    pending = (workspace.outputs or {}).get(PENDING) or {}
    if not pending.get("arn"):
        raise KeyRestoreRefused(f"{workspace} has no KMS key pending deletion.")
    kms = session_for_cluster(workspace.cluster, purpose="reconcile").client("kms")
    key_id = pending["arn"].rsplit("/", 1)[-1]  # AWS takes either; moto only the id here
    try:
        kms.cancel_key_deletion(KeyId=key_id)
        kms.enable_key(KeyId=key_id)
    except ClientError as exc:
        raise KeyRestoreRefused(
            f"AWS refused to restore {pending['arn']}: {error_code(exc)} "
            "(the window may have passed)."
        ) from None
    outputs = {k: v for k, v in workspace.outputs.items() if k != PENDING}
    Workspace.objects.filter(pk=workspace.pk).update(outputs=outputs)
    audit_record(
        actor=actor,
        action="workspace.kms_key_restored",
        obj=workspace,
        data={"arn": pending["arn"]},
    )
