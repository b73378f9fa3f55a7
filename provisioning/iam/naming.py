"""Physical AWS names and ARNs the portal derives for a workspace. Pure functions."""

from __future__ import annotations

from provisioning.iam.spec import ResourceSpec, WorkspaceSpec

ROLE_PATH = "/irsa/"
# A KMS key id is a UUID (36 characters); previews use this stand-in until the key exists, and the
# size checks use it too so they are exact for the real key.
PENDING_KEY_ID = "<key-id-assigned-on-apply>"
_SIZE_STAND_IN_KEY_ID = "00000000-0000-0000-0000-000000000000"


def workspace_slug(spec: WorkspaceSpec) -> str:
    """Cluster and microservice: unique per workspace, used as the prefix of every physical name."""
    return f"{spec.cluster.name}-{spec.microservice}"


def role_name(spec: WorkspaceSpec) -> str:
    return workspace_slug(spec)


def role_arn(spec: WorkspaceSpec) -> str:
    c = spec.cluster
    return f"arn:{c.partition}:iam::{c.account_id}:role{ROLE_PATH}{role_name(spec)}"


def kms_alias(spec: WorkspaceSpec) -> str:
    return f"alias/irsa/{workspace_slug(spec)}"


def pending_kms_key_arn(spec: WorkspaceSpec, *, key_id: str = PENDING_KEY_ID) -> str:
    c = spec.cluster
    return f"arn:{c.partition}:kms:{c.region}:{c.account_id}:key/{key_id}"


def size_check_kms_key_arn(spec: WorkspaceSpec) -> str:
    return pending_kms_key_arn(spec, key_id=_SIZE_STAND_IN_KEY_ID)


def physical_name(spec: WorkspaceSpec, resource: ResourceSpec) -> str:
    return f"{workspace_slug(spec)}-{resource.name}"


def resource_arn(spec: WorkspaceSpec, resource: ResourceSpec) -> str:
    c = spec.cluster
    name = physical_name(spec, resource)
    if resource.kind == "s3_bucket":
        return f"arn:{c.partition}:s3:::{name}"
    if resource.kind == "dynamodb_table":
        return f"arn:{c.partition}:dynamodb:{c.region}:{c.account_id}:table/{name}"
    raise ValueError(f"no ARN rule for resource kind {resource.kind!r}")
