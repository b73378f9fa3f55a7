"""The orphan sweep (beat): IAM roles under the portal's path and KMS keys with the portal's tags
that no workspace holds. Reported (log and audit), never deleted: a human decides, through the
workspace's reconciliation or by hand.

"Holds" is the inventory, which every run refreshes from the state (failed ones through the
reconciliation), plus the names claimed by queued plans, so a run creating a role right now is
not reported.
"""

from __future__ import annotations

import logging
from typing import Any

from provisioning.aws import AccountSession, session_for_cluster
from provisioning.iam import naming
from provisioning.models import Cluster, PhysicalName, Workspace, WorkspaceStatus
from provisioning.services.audit import audit_record
from provisioning.services.reconcile import GONE_KEY_STATES

logger = logging.getLogger(__name__)


def orphans_sweep() -> list[dict[str, str]]:
    """List the orphans in every cluster's account (through its deployment role, when it names
    one); audit them per cluster. Clusters sharing an account and region are listed once."""
    held = _held()
    found: list[dict[str, str]] = []
    seen: dict[tuple[str, str], list[dict[str, str]]] = {}
    for cluster in Cluster.objects.order_by("name"):
        place = (cluster.account_id, cluster.region)
        if place not in seen:
            aws = session_for_cluster(cluster, purpose="audit")
            seen[place] = [*_orphan_roles(aws, held), *_orphan_keys(aws, held)]
            found += seen[place]
        orphans = seen[place]
        if not orphans:
            continue
        logger.warning("orphans for cluster %s: %s", cluster.name, [o["id"] for o in orphans])
        audit_record(actor=None, action="orphans.reported", obj=cluster, data={"orphans": orphans})
    return found


def _held() -> set[str]:
    live = Workspace.objects.exclude(status=WorkspaceStatus.DESTROYED)
    held = {arn for pair in live.values_list("role_arn", "kms_key_arn") for arn in pair if arn}
    held |= set(PhysicalName.objects.filter(kind="iam_role").values_list("name", flat=True))
    return held


def _orphan_roles(aws: AccountSession, held: set[str]) -> list[dict[str, str]]:
    iam, found = aws.client("iam"), []
    for page in iam.get_paginator("list_roles").paginate(PathPrefix=naming.ROLE_PATH):
        for role in page["Roles"]:
            if role["Arn"] not in held and role["RoleName"] not in held:
                found.append({"type": "iam_role", "id": role["RoleName"], "arn": role["Arn"]})
    return found


def _orphan_keys(aws: AccountSession, held: set[str]) -> list[dict[str, str]]:
    kms, found = aws.client("kms"), []
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
            if meta.get("KeyManager") != "CUSTOMER" or meta["KeyState"] in GONE_KEY_STATES:
                continue
            if meta["Arn"] in held or not _portal_tagged(kms, key["KeyId"]):
                continue
            found.append({"type": "kms_key", "id": key["KeyId"], "arn": meta["Arn"]})
    return found


def _portal_tagged(kms: Any, key_id: str) -> bool:
    tags = kms.list_resource_tags(KeyId=key_id).get("Tags", [])
    return any(t["TagKey"] == "ManagedBy" and t["TagValue"] == "irsa-portal" for t in tags)
