"""Physical AWS names and ARNs the portal derives for a workspace. Pure functions.

Why ``--`` joins the parts: every part (cluster, microservice, resource name) is a DNS-1123 label
that the portal additionally forbids to contain ``--`` (``validation.validate_portal_name``). A part
also never starts or ends with ``-``, so in ``<cluster>--<microservice>--<resource>`` the only
``--`` are the two separators: splitting on them gives the parts back, hence two different
(cluster, microservice, resource) triples can never derive one name (property-tested in
tests/unit/test_naming.py). The obvious alternatives were worse: a character DNS-1123 labels lack is
not allowed in all of S3, DynamoDB, IAM and KMS alias names ('.' breaks S3 virtual-host TLS, '_' is
not allowed in S3), length prefixes (``6orders5items``) are unreadable, and a hash suffix is only
probably unique and hides the service in the console. ``--`` costs two characters per join.

S3 bucket names are global across all AWS accounts, so the installation appends a constant suffix
(``S3_BUCKET_NAME_SUFFIX``, e.g. ``-111122223333``) carried in the spec as ``bucket_suffix``; a
constant suffix keeps the mapping injective.

Workspaces applied before ``--`` joins (``name_scheme`` 1, set by migration 0005 for every workspace
that existed) keep their single-dash names and no bucket suffix: renaming a table, bucket, role or
alias makes Terraform replace it, so an upgrade would delete data. Single-dash joins are not
injective (and pre-upgrade parts may contain ``--``): legacy names stay unique only through the
``PhysicalName`` claims, which every scheme's names are checked against.
"""

from __future__ import annotations

from provisioning.iam.spec import NAME_SCHEME_LEGACY, ResourceSpec, WorkspaceSpec

ROLE_PATH = "/irsa/"
SEPARATOR = "--"
LEGACY_SEPARATOR = "-"
# A KMS key id is a UUID (36 characters); previews use this stand-in until the key exists, and the
# size checks use it too so they are exact for the real key.
PENDING_KEY_ID = "<key-id-assigned-on-apply>"
_SIZE_STAND_IN_KEY_ID = "00000000-0000-0000-0000-000000000000"


def separator(spec: WorkspaceSpec) -> str:
    """What joins the parts of the workspace's names: ``-`` for a legacy workspace."""
    return LEGACY_SEPARATOR if spec.name_scheme == NAME_SCHEME_LEGACY else SEPARATOR


def bucket_suffix(spec: WorkspaceSpec) -> str:
    """Legacy buckets were created before the installation suffix existed and keep their names."""
    return "" if spec.name_scheme == NAME_SCHEME_LEGACY else spec.bucket_suffix


def workspace_slug(spec: WorkspaceSpec) -> str:
    """Cluster and microservice: unique per workspace, used as the prefix of every physical name."""
    return f"{spec.cluster.name}{separator(spec)}{spec.microservice}"


def resource_name_prefix(spec: WorkspaceSpec) -> str:
    """What every table and bucket name of the workspace starts with."""
    return f"{workspace_slug(spec)}{separator(spec)}"


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
    name = f"{resource_name_prefix(spec)}{resource.name}"
    if resource.kind == "s3_bucket":
        return f"{name}{bucket_suffix(spec)}"
    return name


def resource_name_of(spec: WorkspaceSpec, kind: str, physical: str) -> str | None:
    """The resource name a physical name of this workspace was derived from, or None.

    For a legacy workspace the answer is only a candidate: ``dev-orders-line-items`` may be the
    table ``line-items`` of ``orders`` or ``items`` of ``orders-line``; callers decide by tags or
    by the exact names of the spec (``reconcile._ours_by_name``)."""
    prefix = resource_name_prefix(spec)
    suffix = bucket_suffix(spec) if kind == "s3_bucket" else ""
    if not physical.startswith(prefix) or not physical.endswith(suffix):
        return None
    name = physical[len(prefix) : len(physical) - len(suffix)]
    if spec.name_scheme == NAME_SCHEME_LEGACY:
        return name or None
    return name if name and SEPARATOR not in name else None


def resource_arn(spec: WorkspaceSpec, resource: ResourceSpec) -> str:
    c = spec.cluster
    name = physical_name(spec, resource)
    if resource.kind == "s3_bucket":
        return f"arn:{c.partition}:s3:::{name}"
    if resource.kind == "dynamodb_table":
        return f"arn:{c.partition}:dynamodb:{c.region}:{c.account_id}:table/{name}"
    raise ValueError(f"no ARN rule for resource kind {resource.kind!r}")


def all_physical_names(spec: WorkspaceSpec) -> list[tuple[str, str]]:
    """(kind, name) of every name the workspace claims: role, KMS alias, tables and buckets."""
    names = [("iam_role", role_name(spec)), ("kms_alias", kms_alias(spec))]
    names += [(r.kind, physical_name(spec, r)) for r in spec.resources]
    return names
