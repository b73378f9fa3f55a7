"""Reconciliation: what AWS holds for a workspace that its Terraform state does not.

After a failed or interrupted apply, Terraform may have created things (a KMS key, a role) it
never recorded. ``workspace_reconcile`` refreshes the inventory from the state and lists what AWS
holds for the service by the portal's tags and names — KMS keys tagged for it, the alias
``alias/irsa/<slug>``, the role and policy ``/irsa/<slug>``, tables and buckets ``<slug>-<name>``
tagged for it — that the state does not, each with the module address it belongs to. A platform
admin then imports an item into the state (``terraform import`` through the runner) or deletes it
from AWS; both are audited and refused while a run is active on the workspace.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError
from django.utils import timezone

from provisioning.aws import session_for_cluster_named
from provisioning.iam import naming
from provisioning.iam.spec import WorkspaceSpec, parse_workspace_spec
from provisioning.models import ACTIVE_RUN_STATUSES, Workspace
from provisioning.services.audit import audit_record
from provisioning.terraform.runner import TerraformError, WorkspaceRunner

logger = logging.getLogger(__name__)
KEY_ADDRESS = "module.kms_key.aws_kms_key.this"
ALIAS_ADDRESS = "module.kms_key.aws_kms_alias.this"
ROLE_ADDRESS = "module.irsa.aws_iam_role.this"
POLICY_ADDRESS = "module.irsa.aws_iam_policy.this"
GONE_KEY_STATES = ("PendingDeletion", "PendingReplicaDeletion")


class ReconcileRefused(Exception):
    """The item cannot be imported or deleted now; the message says why."""


def workspace_reconcile(*, workspace_id: int) -> dict[str, Any]:
    """Refresh the inventory from the state and record what AWS holds outside it."""
    workspace = Workspace.objects.select_related("microservice", "cluster").get(pk=workspace_id)
    spec = _workspace_spec(workspace)
    lines: list[str] = []
    runner = _open(workspace, spec, lines.append)
    try:
        runner.init()
        state = runner.show()
    finally:
        runner.cleanup()
    resources = list(state_resources(state))
    _refresh_inventory(workspace, state, resources)
    managed = _state_ids(resources)
    unmanaged = [item for item in aws_holdings(spec) if not ({item["id"], item["arn"]} & managed)]
    result = {
        "checked_at": timezone.now().isoformat(),
        "state_resources": len(resources),
        "unmanaged": unmanaged,
    }
    Workspace.objects.filter(pk=workspace.pk).update(reconciliation=result)
    audit_record(
        actor=None,
        action="workspace.reconciled",
        obj=workspace,
        data={"unmanaged": [f"{i['type']} {i['id']}" for i in unmanaged]},
    )
    return result


def workspace_reconcile_import(*, actor: Any, workspace: Workspace, item_ids: list[str]) -> None:
    """``terraform import <address> <id>`` for listed items (one ``init`` for all of them), then
    reconcile again. Items imported before a refusal stay imported and audited."""
    items = _listed_items(workspace, item_ids)
    spec = _workspace_spec(workspace)
    lines: list[str] = []
    runner = _open(workspace, spec, lines.append)
    try:
        runner.init()
        for item in items:
            runner.import_resource(address=item["address"], resource_id=item["id"])
            audit_record(
                actor=actor, action="workspace.unmanaged_imported", obj=workspace, data=item
            )
    except TerraformError as exc:
        raise ReconcileRefused(f"{exc}\n{exc.output[-1500:]}") from exc
    finally:
        runner.cleanup()
        workspace_reconcile(workspace_id=workspace.pk)


def workspace_reconcile_delete(*, actor: Any, workspace: Workspace, item_ids: list[str]) -> None:
    """Delete listed items from AWS (a KMS key is scheduled for deletion, as AWS requires)."""
    items = _listed_items(workspace, item_ids)
    spec = _workspace_spec(workspace)
    deleted: set[str] = set()
    try:
        for item in items:
            _DELETERS[item["type"]](spec, item)
            deleted.add(item["id"])
            audit_record(
                actor=actor, action="workspace.unmanaged_deleted", obj=workspace, data=item
            )
    except ClientError as exc:
        raise ReconcileRefused(f"AWS refused to delete {item['type']} {item['id']}: {exc}") from exc
    finally:
        reconciliation = dict(workspace.reconciliation)
        reconciliation["unmanaged"] = [
            i for i in reconciliation.get("unmanaged", []) if i["id"] not in deleted
        ]
        Workspace.objects.filter(pk=workspace.pk).update(reconciliation=reconciliation)
        workspace.reconciliation = reconciliation


def _listed_items(workspace: Workspace, item_ids: list[str]) -> list[dict[str, Any]]:
    if workspace.runs.filter(status__in=ACTIVE_RUN_STATUSES).exists():
        raise ReconcileRefused(
            f"Workspace {workspace} has a queued or running run; wait for it to finish."
        )
    workspace.refresh_from_db(fields=["reconciliation"])
    listed = {item["id"]: item for item in workspace.reconciliation.get("unmanaged", [])}
    missing = [i for i in item_ids if i not in listed]
    if missing:
        raise ReconcileRefused(
            f"{', '.join(missing)} not in the last reconciliation of {workspace}; reconcile again."
        )
    return [listed[i] for i in item_ids]


def _workspace_spec(workspace: Workspace) -> WorkspaceSpec:
    """The spec of the workspace's latest run: the configuration its state was applied with."""
    run = workspace.runs.exclude(spec={}).order_by("-pk").first()
    if run is None:
        raise ReconcileRefused(f"Workspace {workspace} has never run; there is nothing to check.")
    return parse_workspace_spec(run.spec)


def _open(workspace: Workspace, spec: WorkspaceSpec, sink: Any) -> WorkspaceRunner:
    from provisioning.terraform.context import open_workspace  # late: reads settings

    return open_workspace(
        spec=spec,
        state_key=workspace.state_key,
        sink=sink,
        label=f"reconcile-ws{workspace.pk}",
        purpose="reconcile",
    )


def state_resources(show: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every resource of ``terraform show -json`` of a state, across module levels."""
    pending = [(show.get("values") or {}).get("root_module") or {}]
    while pending:
        module = pending.pop()
        yield from module.get("resources", [])
        pending.extend(module.get("child_modules", []))


def _state_ids(resources: list[dict[str, Any]]) -> set[str]:
    ids = set()
    for resource in resources:
        values = resource.get("values") or {}
        for key in ("id", "arn", "name", "key_id", "bucket"):
            if isinstance(values.get(key), str) and values[key]:
                ids.add(values[key])
    return ids


def _refresh_inventory(
    workspace: Workspace, state: dict[str, Any], resources: list[dict[str, Any]]
) -> None:
    """The inventory says what the state's resources are. Not its outputs: a destroy that failed
    half-way leaves the outputs of the last apply naming a role and key that are gone."""
    outputs = {
        name: body.get("value")
        for name, body in ((state.get("values") or {}).get("outputs") or {}).items()
    }
    by_address = {r["address"]: r.get("values") or {} for r in resources}
    Workspace.objects.filter(pk=workspace.pk).update(
        role_arn=by_address.get(ROLE_ADDRESS, {}).get("arn") or "",
        policy_arn=by_address.get(POLICY_ADDRESS, {}).get("arn") or "",
        kms_key_arn=by_address.get(KEY_ADDRESS, {}).get("arn") or "",
        kms_alias=by_address.get(ALIAS_ADDRESS, {}).get("name") or "",
        resource_arns=_resource_arns(resources),
        outputs={k: v for k, v in outputs.items() if not k.endswith("_json")} if resources else {},
    )


def _resource_arns(resources: list[dict[str, Any]]) -> dict[str, str]:
    arns = {}
    for resource in resources:
        address, values = resource["address"], resource.get("values") or {}
        for kind, type_ in (
            ("dynamodb_table", "aws_dynamodb_table"),
            ("s3_bucket", "aws_s3_bucket"),
        ):
            if address.startswith(f'module.{kind}["') and address.endswith(f"].{type_}.this"):
                name = address[len(f'module.{kind}["') : -len(f'"].{type_}.this')]
                arns[f"{kind}/{name}"] = values.get("arn", "")
    return arns


# --- what AWS holds --------------------------------------------------------------------------


def _client(service: str, spec: WorkspaceSpec) -> Any:
    """A client in the spec's cluster's account: its deployment role when it names one."""
    return session_for_cluster_named(spec.cluster.name, purpose="reconcile").client(service)


def _ours(tags: dict[str, str], spec: WorkspaceSpec) -> bool:
    return (
        tags.get("ManagedBy") == "irsa-portal"
        and tags.get("Cluster") == spec.cluster.name
        and tags.get("Microservice") == spec.microservice
    )


def _ours_by_name(name: str, tags: dict[str, str], spec: WorkspaceSpec) -> bool:
    """Tagged: the tags decide. Untagged (Terraform died between creating and tagging it): only
    the exact physical name of one of the spec's resources, as another service's slug may
    share the prefix."""
    if tags:
        return _ours(tags, spec)
    return name in {naming.physical_name(spec, r) for r in spec.resources}


def aws_holdings(spec: WorkspaceSpec) -> list[dict[str, str]]:
    """Everything AWS holds that carries this workspace's tags or names, with its address."""
    return [*_kms(spec), *_iam(spec), *_tables(spec), *_buckets(spec)]


def _item(type_: str, id_: str, arn: str, address: str) -> dict[str, str]:
    return {"type": type_, "id": id_, "arn": arn, "address": address}


def _kms(spec: WorkspaceSpec) -> list[dict[str, str]]:
    kms, found = _client("kms", spec), []
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
            if meta.get("KeyManager") != "CUSTOMER" or meta["KeyState"] in GONE_KEY_STATES:
                continue
            tags = kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
            if _ours({t["TagKey"]: t["TagValue"] for t in tags}, spec):
                found.append(_item("kms_key", key["KeyId"], meta["Arn"], KEY_ADDRESS))
    alias = naming.kms_alias(spec)
    for page in kms.get_paginator("list_aliases").paginate():
        for entry in page["Aliases"]:
            if entry["AliasName"] == alias:
                found.append(_item("kms_alias", alias, entry["AliasArn"], ALIAS_ADDRESS))
    return found


def _iam(spec: WorkspaceSpec) -> list[dict[str, str]]:
    iam, found, name = _client("iam", spec), [], naming.role_name(spec)
    try:
        role = iam.get_role(RoleName=name)["Role"]
        if role["Path"] == naming.ROLE_PATH:
            found.append(_item("iam_role", name, role["Arn"], ROLE_ADDRESS))
    except iam.exceptions.NoSuchEntityException:
        pass
    for page in iam.get_paginator("list_policies").paginate(
        Scope="Local", PathPrefix=naming.ROLE_PATH
    ):
        for policy in page["Policies"]:
            if policy["PolicyName"] == name and policy["Path"] == naming.ROLE_PATH:
                found.append(_item("iam_policy", policy["Arn"], policy["Arn"], POLICY_ADDRESS))
    return found


def _tables(spec: WorkspaceSpec) -> list[dict[str, str]]:
    dynamodb, found = _client("dynamodb", spec), []
    for page in dynamodb.get_paginator("list_tables").paginate():
        for table in page["TableNames"]:
            key = naming.resource_name_of(spec, "dynamodb_table", table)
            if key is None:
                continue
            arn = dynamodb.describe_table(TableName=table)["Table"]["TableArn"]
            tags = dynamodb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])
            if _ours_by_name(table, {t["Key"]: t["Value"] for t in tags}, spec):
                address = f'module.dynamodb_table["{key}"].aws_dynamodb_table.this'
                found.append(_item("dynamodb_table", table, arn, address))
    return found


def _buckets(spec: WorkspaceSpec) -> list[dict[str, str]]:
    s3, found = _client("s3", spec), []
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        key = naming.resource_name_of(spec, "s3_bucket", name)
        if key is None:
            continue
        try:
            tags = s3.get_bucket_tagging(Bucket=name).get("TagSet", [])
        except ClientError:
            tags = []  # NoSuchTagSet
        if _ours_by_name(name, {t["Key"]: t["Value"] for t in tags}, spec):
            address = f'module.s3_bucket["{key}"].aws_s3_bucket.this'
            found.append(
                _item("s3_bucket", name, f"arn:{spec.cluster.partition}:s3:::{name}", address)
            )
    return found


def _delete_key(spec: WorkspaceSpec, item: dict[str, str]) -> None:
    kms = _client("kms", spec)
    kms.disable_key(KeyId=item["id"])
    kms.schedule_key_deletion(KeyId=item["id"], PendingWindowInDays=7)


def _delete_role(spec: WorkspaceSpec, item: dict[str, str]) -> None:
    iam = _client("iam", spec)
    for policy in iam.list_attached_role_policies(RoleName=item["id"])["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=item["id"], PolicyArn=policy["PolicyArn"])
    for name in iam.list_role_policies(RoleName=item["id"])["PolicyNames"]:
        iam.delete_role_policy(RoleName=item["id"], PolicyName=name)
    iam.delete_role(RoleName=item["id"])


def _delete_policy(spec: WorkspaceSpec, item: dict[str, str]) -> None:
    iam = _client("iam", spec)
    for entity in iam.list_entities_for_policy(PolicyArn=item["id"])["PolicyRoles"]:
        iam.detach_role_policy(RoleName=entity["RoleName"], PolicyArn=item["id"])
    for version in iam.list_policy_versions(PolicyArn=item["id"])["Versions"]:
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=item["id"], VersionId=version["VersionId"])
    iam.delete_policy(PolicyArn=item["id"])


def _delete_bucket(spec: WorkspaceSpec, item: dict[str, str]) -> None:
    s3 = _client("s3", spec)
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=item["id"]):
        for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            s3.delete_object(Bucket=item["id"], Key=entry["Key"], VersionId=entry["VersionId"])
    s3.delete_bucket(Bucket=item["id"])


_DELETERS = {
    "kms_key": _delete_key,
    "kms_alias": lambda spec, item: _client("kms", spec).delete_alias(AliasName=item["id"]),
    "iam_role": _delete_role,
    "iam_policy": _delete_policy,
    "dynamodb_table": lambda spec, item: _client("dynamodb", spec).delete_table(
        TableName=item["id"]
    ),
    "s3_bucket": _delete_bucket,
}
