"""Render one workspace as a Terraform root module: ``main.tf.json`` + ``terraform.tfvars.json``.

Pure: no I/O, no settings. ``main.tf.json`` holds only structure and ``${var.x}`` references; every
value that comes from a user (names, ARNs, service accounts, settings) travels in
``terraform.tfvars.json``, so nothing a user typed is ever parsed as Terraform code. The root calls
the modules in ``terraform/modules`` (linked as ``./modules`` in the working directory by the
runner): the KMS key first, then the tables and buckets encrypted with it, then the IRSA role whose
policy names their ARN outputs, and last the key policy, which names the role. Plan addresses
read like the resources: ``module.dynamodb_table["orders"]``, ``module.s3_bucket["invoices"]``
(one ``for_each`` module per kind, keyed by the resource's name from the tfvars).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from provisioning.iam import naming, policies
from provisioning.iam.spec import ResourceSpec, WorkspaceSpec

MAIN_FILE = "main.tf.json"
TFVARS_FILE = "terraform.tfvars.json"
BACKENDS = ("local", "pg", "s3")
SANDBOX_SERVICES = ("dynamodb", "iam", "kms", "s3", "sts")
KEY_DELETION_WINDOW_DAYS = (7, 30)
REQUIRED_VERSION = ">= 1.0"
AWS_PROVIDER = {"source": "hashicorp/aws", "version": ">= 5.72, < 6.0"}
CATALOG_FILE = "${path.module}/modules/irsa/action_catalog.json"

_KEY_TYPE = "object({name = string, type = string})"
_TABLE_TYPE = (
    "map(object({kind = string, access = string, name = string, "
    f"hash_key = {_KEY_TYPE}, range_key = {_KEY_TYPE}, billing_mode = string, "
    "read_capacity = number, write_capacity = number, deletion_protection = bool, "
    "point_in_time_recovery = bool}))"
)
_BUCKET_TYPE = "map(object({kind = string, access = string, name = string, versioning = bool}))"

Json = dict[str, Any]


class AssumedRole(Protocol):
    """The cluster's deployment role (``provisioning.aws.DeploymentRole``)."""

    role_arn: str
    session_name: str
    external_id: str | None


def render_workspace(
    spec: WorkspaceSpec,
    *,
    region: str,
    sandbox_endpoint: str | None = None,
    permissions_boundary_arn: str | None = None,
    backend: str = "local",
    key_deletion_window_days: int = 7,
    deployment_role: AssumedRole | None = None,
    max_retries: int | None = None,
) -> dict[str, str]:
    """Return ``{"main.tf.json": ..., "terraform.tfvars.json": ...}`` as JSON text.

    With a ``deployment_role`` the provider assumes it (the worker's own credentials only
    ``sts:AssumeRole``); its ARN, session name and external id travel in the tfvars.
    ``max_retries`` bounds the provider's own retries (a drift check gives up on throttling
    quickly and leaves the back-off to the scheduler); None keeps the provider's default.
    """
    _check_arguments(spec, region, sandbox_endpoint, backend, key_deletion_window_days)
    sandbox = sandbox_endpoint is not None
    assume = deployment_role is not None
    variables = _tfvars(spec, permissions_boundary_arn, key_deletion_window_days)
    if sandbox:
        variables["sandbox_endpoint"] = sandbox_endpoint
    if deployment_role is not None:
        variables.update(
            {
                "deployment_role_arn": deployment_role.role_arn,
                "deployment_session_name": deployment_role.session_name,
                "deployment_external_id": deployment_role.external_id or None,
            }
        )
    main = _main(backend=backend, sandbox=sandbox, assume=assume)
    if max_retries is not None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError("max_retries must be a whole number >= 0.")
        main["provider"]["aws"]["max_retries"] = max_retries
    return {
        MAIN_FILE: _dump(main),
        TFVARS_FILE: _dump(variables),
    }


def _dump(document: Json) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _check_arguments(
    spec: WorkspaceSpec,
    region: str,
    sandbox_endpoint: str | None,
    backend: str,
    key_deletion_window_days: int,
) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}.")
    if region != spec.cluster.region:
        raise ValueError(
            f"The provider region {region!r} is not the cluster's region "
            f"{spec.cluster.region!r}; a workspace lives in its cluster's region."
        )
    low, high = KEY_DELETION_WINDOW_DAYS
    days = key_deletion_window_days
    if isinstance(days, bool) or not isinstance(days, int) or not low <= days <= high:
        raise ValueError(f"key_deletion_window_days must be a whole number from {low} to {high}.")
    if sandbox_endpoint is not None and not sandbox_endpoint.startswith(("http://", "https://")):
        raise ValueError("sandbox_endpoint must be an http:// or https:// URL.")


# --- terraform.tfvars.json: every user value ------------------------------------------------


def _tfvars(
    spec: WorkspaceSpec, permissions_boundary_arn: str | None, key_deletion_window_days: int
) -> Json:
    cluster = spec.cluster
    slug = naming.workspace_slug(spec)
    return {
        "region": cluster.region,
        "partition": cluster.partition,
        "account_id": cluster.account_id,
        "role_name": naming.role_name(spec),
        "role_path": naming.ROLE_PATH,
        "permissions_boundary_arn": permissions_boundary_arn,
        "oidc_provider_arn": cluster.oidc_provider_arn,
        "oidc_issuer": cluster.oidc_issuer,
        "service_account_subjects": policies.service_account_subjects(spec),
        "via_services": policies.via_services(spec),
        "kms_alias": naming.kms_alias(spec),
        "kms_description": f"IRSA workspace key for {slug}",
        "key_deletion_window_days": key_deletion_window_days,
        "tags": {
            "ManagedBy": "irsa-portal",
            "Cluster": cluster.name,
            "Microservice": spec.microservice,
        },
        "dynamodb_tables": {r.name: _table(spec, r) for r in _of_kind(spec, "dynamodb_table")},
        "s3_buckets": {r.name: _bucket(spec, r) for r in _of_kind(spec, "s3_bucket")},
    }


def _of_kind(spec: WorkspaceSpec, kind: str) -> list[ResourceSpec]:
    return sorted((r for r in spec.resources if r.kind == kind), key=lambda r: r.name)


def _table(spec: WorkspaceSpec, resource: ResourceSpec) -> Json:
    s = resource.settings
    return {
        "kind": resource.kind,
        "access": resource.access,
        "name": naming.physical_name(spec, resource),
        "hash_key": s.get("partition_key") or {"name": "pk", "type": "S"},
        "range_key": s.get("sort_key"),
        "billing_mode": s.get("billing_mode", "PAY_PER_REQUEST"),
        "read_capacity": s.get("read_capacity"),
        "write_capacity": s.get("write_capacity"),
        "deletion_protection": bool(s.get("deletion_protection", False)),
        "point_in_time_recovery": bool(s.get("point_in_time_recovery", True)),
    }


def _bucket(spec: WorkspaceSpec, resource: ResourceSpec) -> Json:
    return {
        "kind": resource.kind,
        "access": resource.access,
        "name": naming.physical_name(spec, resource),
        "versioning": bool(resource.settings.get("versioning", True)),
    }


# --- main.tf.json: structure and ${var.x} references only -----------------------------------


def _main(*, backend: str, sandbox: bool, assume: bool = False) -> Json:
    return {
        "terraform": {
            "required_version": REQUIRED_VERSION,
            "required_providers": {"aws": dict(AWS_PROVIDER)},
            # Empty on purpose: the runner passes the settings with `init -backend-config`.
            "backend": {backend: {}},
        },
        "variable": _variables(sandbox, assume),
        "provider": {"aws": _provider(sandbox, assume)},
        "locals": _locals(),
        "module": _modules(sandbox),
        "output": _outputs(),
    }


def _variables(sandbox: bool, assume: bool = False) -> Json:
    strings = (
        "region",
        "partition",
        "account_id",
        "role_name",
        "role_path",
        "oidc_provider_arn",
        "oidc_issuer",
        "kms_alias",
        "kms_description",
    )
    variables: Json = {name: {"type": "string"} for name in strings}
    variables.update(
        {
            "permissions_boundary_arn": {"type": "string", "default": None},
            "service_account_subjects": {"type": "list(string)"},
            "via_services": {"type": "list(string)"},
            "key_deletion_window_days": {"type": "number"},
            "tags": {"type": "map(string)"},
            "dynamodb_tables": {"type": _TABLE_TYPE},
            "s3_buckets": {"type": _BUCKET_TYPE},
        }
    )
    if sandbox:
        variables["sandbox_endpoint"] = {"type": "string"}
    if assume:
        variables.update(
            {
                "deployment_role_arn": {"type": "string"},
                "deployment_session_name": {"type": "string"},
                "deployment_external_id": {"type": "string", "default": None},
            }
        )
    return variables


def _provider(sandbox: bool, assume: bool = False) -> Json:
    provider = _provider_base(sandbox)
    if assume:
        # The session name carries the run id, so the account's CloudTrail ties each change to
        # a portal run; a null external id leaves the argument unset.
        provider["assume_role"] = {
            "role_arn": "${var.deployment_role_arn}",
            "session_name": "${var.deployment_session_name}",
            "external_id": "${var.deployment_external_id}",
        }
    return provider


def _provider_base(sandbox: bool) -> Json:
    if not sandbox:
        # Refuse to run with credentials for another account than the cluster's.
        return {"region": "${var.region}", "allowed_account_ids": ["${var.account_id}"]}
    return {
        "region": "${var.region}",
        "endpoints": {service: "${var.sandbox_endpoint}" for service in SANDBOX_SERVICES},
        "s3_use_path_style": True,
        "skip_credentials_validation": True,
        "skip_metadata_api_check": True,
        "skip_requesting_account_id": True,
        "skip_region_validation": True,
    }


def _locals() -> Json:
    key_arn = ["${module.kms_key.key_arn}"]
    root = {"AWS": "${local.account_root_arn}"}
    return {
        "catalog": '${jsondecode(file("' + CATALOG_FILE + '"))}',
        "account_root_arn": "arn:${var.partition}:iam::${var.account_id}:root",
        "irsa_resources": (
            "${concat("
            "[for k, t in var.dynamodb_tables : "
            "{kind = t.kind, access = t.access, arn = module.dynamodb_table[k].arn}], "
            "[for k, b in var.s3_buckets : "
            "{kind = b.kind, access = b.access, arn = module.s3_bucket[k].arn}])}"
        ),
        # Exactly build_key_policy in provisioning/iam/policies.py.
        "key_policy": {
            "Version": policies.POLICY_VERSION,
            "Statement": [
                {
                    "Sid": "AccountAdministration",
                    "Effect": "Allow",
                    "Principal": root,
                    "Action": "${local.catalog.kms_key.administration_actions}",
                    "Resource": key_arn,
                },
                {
                    "Sid": "AccountGrantsForAwsServices",
                    "Effect": "Allow",
                    "Principal": root,
                    "Action": "${local.catalog.kms_key.service_grant_actions}",
                    "Resource": key_arn,
                    "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
                },
                {
                    "Sid": "ServiceRoleUse",
                    "Effect": "Allow",
                    "Principal": {"AWS": "${module.irsa.role_arn}"},
                    "Action": "${module.irsa.kms_actions}",
                    "Resource": key_arn,
                    "Condition": {
                        "StringEquals": {"kms:ViaService": "${sort(distinct(var.via_services))}"}
                    },
                },
            ],
        },
    }


def _modules(sandbox: bool) -> Json:
    buckets: Json = {
        "source": "./modules/s3-bucket",
        "for_each": "${var.s3_buckets}",
        "name": "${each.value.name}",
        "versioning": "${each.value.versioning}",
        "kms_key_arn": "${module.kms_key.key_arn}",
        "tags": "${var.tags}",
    }
    if sandbox:
        # The sandbox evaluates only StringEquals, so the Bool condition of the TLS deny would
        # deny every request there. Against AWS the module default (true) applies.
        buckets["deny_insecure_transport"] = False
    return {
        "kms_key": {
            "source": "./modules/kms-key",
            "alias_name": "${var.kms_alias}",
            "description": "${var.kms_description}",
            "deletion_window_in_days": "${var.key_deletion_window_days}",
            "key_policy_json": "${jsonencode(local.key_policy)}",
            "tags": "${var.tags}",
        },
        "dynamodb_table": {
            "source": "./modules/dynamodb-table",
            "for_each": "${var.dynamodb_tables}",
            "name": "${each.value.name}",
            "hash_key": "${each.value.hash_key}",
            "range_key": "${each.value.range_key}",
            "billing_mode": "${each.value.billing_mode}",
            "read_capacity": "${each.value.read_capacity}",
            "write_capacity": "${each.value.write_capacity}",
            "deletion_protection": "${each.value.deletion_protection}",
            "point_in_time_recovery": "${each.value.point_in_time_recovery}",
            "kms_key_arn": "${module.kms_key.key_arn}",
            "tags": "${var.tags}",
        },
        "s3_bucket": buckets,
        "irsa": {
            "source": "./modules/irsa",
            # Access goes first: the role is created after the tables and buckets and so
            # destroyed before them. A destroy that fails on a bucket still holding objects has
            # then already revoked every access (the policy depends on their ARNs anyway).
            "depends_on": ["module.dynamodb_table", "module.s3_bucket"],
            "role_name": "${var.role_name}",
            "role_path": "${var.role_path}",
            "permissions_boundary_arn": "${var.permissions_boundary_arn}",
            "oidc_provider_arn": "${var.oidc_provider_arn}",
            "oidc_issuer": "${var.oidc_issuer}",
            "service_account_subjects": "${var.service_account_subjects}",
            "resources": "${local.irsa_resources}",
            "kms_key_arn": "${module.kms_key.key_arn}",
            "via_services": "${var.via_services}",
            "tags": "${var.tags}",
        },
    }


def _outputs() -> Json:
    values = {
        "role_arn": "${module.irsa.role_arn}",
        "role_name": "${module.irsa.role_name}",
        "policy_arn": "${module.irsa.policy_arn}",
        "policy_json": "${module.irsa.policy_json}",
        "trust_policy_json": "${module.irsa.trust_policy_json}",
        "kms_key_arn": "${module.kms_key.key_arn}",
        "kms_key_id": "${module.kms_key.key_id}",
        "kms_alias": "${module.kms_key.alias_name}",
        "key_policy_json": "${module.kms_key.key_policy_json}",
        "resource_arns": (
            "${merge("
            '{for k, t in module.dynamodb_table : format("%s/%s", var.dynamodb_tables[k].kind, k)'
            " => t.arn}, "
            '{for k, b in module.s3_bucket : format("%s/%s", var.s3_buckets[k].kind, k)'
            " => b.arn})}"
        ),
    }
    return {name: {"value": value} for name, value in values.items()}
