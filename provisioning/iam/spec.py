"""The workspace spec: one microservice in one cluster, as plain data.

``parse_workspace_spec`` is the boundary for spec files and API payloads: it collects every problem
with a path to the offending field (``resources[1].name``) and a message that says what to change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from provisioning import validation as v
from provisioning.iam.catalog import Catalog, load_catalog

DYNAMODB_KEY_TYPES = ("S", "N", "B")
DYNAMODB_BILLING_MODES = ("PAY_PER_REQUEST", "PROVISIONED")
MAX_SERVICE_ACCOUNTS = 10
MAX_RESOURCES = 20
# How physical names are joined (provisioning.iam.naming): 1 = the single-dash names of workspaces
# applied before the upgrade (kept so Terraform does not replace them), 2 = ``--`` joins.
NAME_SCHEME_LEGACY = 1
NAME_SCHEME_CURRENT = 2
NAME_SCHEMES = (NAME_SCHEME_LEGACY, NAME_SCHEME_CURRENT)


class SpecError(ValueError):
    """Invalid spec; ``errors`` maps a field path to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {m}" for k, ms in errors.items() for m in ms))


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    account_id: str
    region: str
    oidc_provider_arn: str

    @property
    def partition(self) -> str:
        return v.parse_oidc_provider_arn(self.oidc_provider_arn)["partition"]

    @property
    def oidc_issuer(self) -> str:
        return v.parse_oidc_provider_arn(self.oidc_provider_arn)["issuer"]


@dataclass(frozen=True)
class ResourceSpec:
    kind: str
    name: str
    access: str
    settings: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class WorkspaceSpec:
    microservice: str
    namespace: str
    service_accounts: tuple[str, ...]
    cluster: ClusterSpec
    resources: tuple[ResourceSpec, ...]  # in the order given; builders sort
    # The installation's constant S3 bucket name suffix (settings.S3_BUCKET_NAME_SUFFIX).
    bucket_suffix: str = ""
    # The workspace's naming scheme (Workspace.name_scheme); spec files default to the current one.
    name_scheme: int = NAME_SCHEME_CURRENT


class _Errors:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def check(self, path: str, validator, value) -> bool:
        try:
            validator(value)
        except ValidationError as exc:
            for message in exc.messages:
                self.add(path, message)
            return False
        return True


def parse_workspace_spec(data: Any, *, catalog: Catalog | None = None) -> WorkspaceSpec:
    """Validate a JSON-shaped spec and return it as a ``WorkspaceSpec``; raise ``SpecError``."""
    catalog = catalog or load_catalog()
    err = _Errors()
    if not isinstance(data, dict):
        raise SpecError({"": ["The spec must be a JSON object."]})
    # Before any rule sees the text: every string nested in the spec, keys too, whatever field.
    hidden = v.control_character_errors(data)
    if hidden:
        raise SpecError(hidden)
    _refuse_unknown(
        err,
        "",
        data,
        {
            "microservice",
            "namespace",
            "service_accounts",
            "cluster",
            "resources",
            "bucket_suffix",
            "name_scheme",
        },
    )
    name_scheme = _parse_name_scheme(err, data.get("name_scheme", NAME_SCHEME_CURRENT))
    part = _part_validator(name_scheme)
    name = _required_str(err, data, "microservice")
    namespace = _required_str(err, data, "namespace")
    if name is not None:
        err.check("microservice", lambda x: part(x, what="microservice name"), name)
    if namespace is not None:
        err.check("namespace", lambda x: v.validate_dns1123_label(x, what="namespace"), namespace)
    accounts = _parse_service_accounts(err, data.get("service_accounts"))
    cluster = _parse_cluster(err, data.get("cluster"), part)
    resources = _parse_resources(err, data.get("resources"), catalog, part)
    bucket_suffix = data.get("bucket_suffix", "")
    err.check("bucket_suffix", v.validate_bucket_suffix, bucket_suffix)
    if err.errors:
        raise SpecError(err.errors)
    spec = WorkspaceSpec(name, namespace, accounts, cluster, resources, bucket_suffix, name_scheme)
    _check_derived_names(err, spec)
    if err.errors:
        raise SpecError(err.errors)
    return spec


def _refuse_unknown(err: _Errors, path: str, data: dict, known: set[str]) -> None:
    for key in sorted(set(data) - known):
        err.add(f"{path}{key}", f"Unknown field '{key}'; allowed: {', '.join(sorted(known))}.")


def _parse_name_scheme(err: _Errors, value: Any) -> int:
    if isinstance(value, bool) or value not in NAME_SCHEMES:
        err.add(
            "name_scheme",
            f"'name_scheme' must be {NAME_SCHEME_LEGACY} (single-dash names of a workspace applied "
            f"before the upgrade) or {NAME_SCHEME_CURRENT} ('--' joins); leave it out for "
            f"{NAME_SCHEME_CURRENT}.",
        )
        return NAME_SCHEME_CURRENT
    return int(value)


def _part_validator(name_scheme: int) -> Callable[..., None]:
    """The rule for cluster, microservice and resource names. The ``--`` ban is what keeps the
    current names injective; legacy names were never joined by ``--`` and a pre-upgrade name that
    contains it must stay valid (renaming a resource replaces it). The claims keep them unique."""
    return v.validate_dns1123_label if name_scheme == NAME_SCHEME_LEGACY else v.validate_portal_name


def _required_str(err: _Errors, data: dict, key: str, path: str = "") -> str | None:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        err.add(f"{path}{key}", f"'{key}' is required and must be a non-empty string.")
        return None
    return value


def _parse_service_accounts(err: _Errors, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        err.add("service_accounts", "List at least one Kubernetes service account name.")
        return ()
    if len(value) > MAX_SERVICE_ACCOUNTS:
        err.add(
            "service_accounts",
            f"At most {MAX_SERVICE_ACCOUNTS} service accounts per "
            "microservice; the trust policy must stay under 2,048 characters.",
        )
    if len(set(map(str, value))) != len(value):
        err.add("service_accounts", "Service account names must be unique.")
    for i, sa in enumerate(value):
        err.check(
            f"service_accounts[{i}]",
            lambda x: v.validate_dns1123_label(x, what="service account name"),
            sa,
        )
    return tuple(sorted(str(sa) for sa in value))


def _parse_cluster(err: _Errors, value: Any, part: Callable[..., None]) -> ClusterSpec | None:
    if not isinstance(value, dict):
        err.add("cluster", "'cluster' is required: {name, account_id, region, oidc_provider_arn}.")
        return None
    _refuse_unknown(err, "cluster.", value, {"name", "account_id", "region", "oidc_provider_arn"})
    fields = {
        k: _required_str(err, value, k, "cluster.")
        for k in ("name", "account_id", "region", "oidc_provider_arn")
    }
    checks = {
        "name": lambda x: part(x, what="cluster name"),
        "account_id": v.validate_account_id,
        "region": v.validate_region,
        "oidc_provider_arn": v.validate_oidc_provider_arn,
    }
    ok = all(
        [fields[k] is not None and err.check(f"cluster.{k}", checks[k], fields[k]) for k in checks]
    )
    if not ok:
        return None
    arn = v.parse_oidc_provider_arn(fields["oidc_provider_arn"])
    if arn["account"] != fields["account_id"]:
        err.add(
            "cluster.oidc_provider_arn",
            f"The OIDC provider is in account {arn['account']} "
            f"but the cluster's account_id is {fields['account_id']}; they must match.",
        )
    if arn["region"] != fields["region"]:
        err.add(
            "cluster.oidc_provider_arn",
            f"The OIDC issuer is in region {arn['region']} "
            f"but the cluster's region is {fields['region']}; they must match.",
        )
    return ClusterSpec(**fields)


def _parse_resources(
    err: _Errors, value: Any, catalog: Catalog, part: Callable[..., None]
) -> tuple[ResourceSpec, ...]:
    if not isinstance(value, list):
        err.add("resources", "'resources' must be a list of {kind, name, access} objects.")
        return ()
    if not value:
        err.add(
            "resources",
            "List at least one resource; a microservice without AWS resources needs no IAM role.",
        )
    if len(value) > MAX_RESOURCES:
        err.add("resources", f"At most {MAX_RESOURCES} resources per microservice.")
    parsed: list[ResourceSpec] = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(value):
        resource = _parse_resource(err, f"resources[{i}]", item, catalog, part)
        if resource is None:
            continue
        if (resource.kind, resource.name) in seen:
            err.add(
                f"resources[{i}].name",
                f"A {resource.kind} named '{resource.name}' is "
                "listed twice; resource names must be unique per kind.",
            )
        seen.add((resource.kind, resource.name))
        parsed.append(resource)
    return tuple(parsed)


def _parse_resource(
    err: _Errors, path: str, item: Any, catalog: Catalog, part: Callable[..., None]
) -> ResourceSpec | None:
    if not isinstance(item, dict):
        err.add(path, "Each resource must be an object {kind, name, access}.")
        return None
    _refuse_unknown(err, f"{path}.", item, {"kind", "name", "access", "settings"})
    kind, name, access = (
        _required_str(err, item, k, f"{path}.") for k in ("kind", "name", "access")
    )
    if kind is not None and kind not in catalog.kinds:
        err.add(
            f"{path}.kind",
            f"Unknown resource kind '{kind}'; use one of: {', '.join(catalog.kinds)}.",
        )
        kind = None
    if kind is not None and access is not None and access not in catalog.kinds[kind].levels:
        err.add(
            f"{path}.access",
            f"Unknown access level '{access}' for {kind}; use one of: "
            f"{', '.join(catalog.kinds[kind].levels)}.",
        )
        access = None
    if name is not None:
        err.check(f"{path}.name", lambda x: part(x, what="resource name"), name)
    raw_settings = item.get("settings", {})
    if kind is None or access is None or name is None:
        return None
    settings = _parse_settings(err, f"{path}.settings", kind, raw_settings)
    return ResourceSpec(kind=kind, name=name, access=access, settings=settings)


def _parse_settings(err: _Errors, path: str, kind: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        err.add(path, "'settings' must be an object.")
        return {}
    if kind == "s3_bucket":
        return _parse_s3_settings(err, path, raw)
    return _parse_dynamodb_settings(err, path, raw)


def _parse_s3_settings(err: _Errors, path: str, raw: dict) -> dict[str, Any]:
    _refuse_unknown(err, f"{path}.", raw, {"versioning"})
    versioning = raw.get("versioning", True)
    if not isinstance(versioning, bool):
        err.add(f"{path}.versioning", "'versioning' must be true or false.")
    return {"versioning": bool(versioning)}


def _parse_dynamodb_settings(err: _Errors, path: str, raw: dict) -> dict[str, Any]:
    _refuse_unknown(
        err,
        f"{path}.",
        raw,
        {
            "partition_key",
            "sort_key",
            "billing_mode",
            "read_capacity",
            "write_capacity",
            "deletion_protection",
            "point_in_time_recovery",
        },
    )
    settings: dict[str, Any] = {
        "partition_key": _parse_key(
            err, f"{path}.partition_key", raw.get("partition_key", {"name": "pk", "type": "S"})
        ),
        "sort_key": None,
        "billing_mode": raw.get("billing_mode", "PAY_PER_REQUEST"),
        "read_capacity": None,
        "write_capacity": None,
        "deletion_protection": raw.get("deletion_protection", False),
        "point_in_time_recovery": raw.get("point_in_time_recovery", True),
    }
    for flag in ("deletion_protection", "point_in_time_recovery"):
        if not isinstance(settings[flag], bool):
            err.add(f"{path}.{flag}", f"'{flag}' must be true or false.")
    if raw.get("sort_key") is not None:
        settings["sort_key"] = _parse_key(err, f"{path}.sort_key", raw["sort_key"])
        _check_keys_differ(err, path, settings["partition_key"], settings["sort_key"])
    if settings["billing_mode"] not in DYNAMODB_BILLING_MODES:
        err.add(
            f"{path}.billing_mode",
            f"Unknown billing mode '{settings['billing_mode']}'; use "
            f"{' or '.join(DYNAMODB_BILLING_MODES)}.",
        )
    elif settings["billing_mode"] == "PROVISIONED":
        for cap in ("read_capacity", "write_capacity"):
            value = raw.get(cap)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 40000:
                err.add(
                    f"{path}.{cap}",
                    f"PROVISIONED billing needs '{cap}' as a whole number from 1 to 40000.",
                )
            settings[cap] = value
    else:
        for cap in ("read_capacity", "write_capacity"):
            if raw.get(cap) is not None:
                err.add(f"{path}.{cap}", f"'{cap}' only applies to PROVISIONED billing; remove it.")
    return settings


def _parse_key(err: _Errors, path: str, raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, dict) or set(raw) != {"name", "type"}:
        err.add(path, "A key is an object {name, type} with type S, N or B.")
        return None
    if not isinstance(raw["name"], str) or not 1 <= len(raw["name"]) <= 255:
        err.add(f"{path}.name", "The key attribute name must be 1-255 characters.")
    else:
        err.check(
            f"{path}.name",
            lambda x: v.validate_no_control_characters(x, what="key attribute name"),
            raw["name"],
        )
    if raw["type"] not in DYNAMODB_KEY_TYPES:
        err.add(f"{path}.type", f"Key type '{raw['type']}' is not S, N or B.")
    return {"name": raw["name"], "type": raw["type"]}


def _check_keys_differ(err: _Errors, path: str, partition: Any, sort: Any) -> None:
    # DynamoDB refuses a table whose sort key is its partition key; say so before Terraform does.
    if partition and sort and partition.get("name") == sort.get("name"):
        err.add(
            f"{path}.sort_key.name",
            f"The sort key '{sort.get('name')}' is the partition key; "
            "use a different attribute or leave the sort key out.",
        )


def _check_derived_names(err: _Errors, spec: WorkspaceSpec) -> None:
    """The physical AWS names the portal derives must obey AWS rules, and the policies fit."""
    from provisioning.iam import naming, policies  # late: both import this module

    err.check("microservice", v.validate_iam_role_name, naming.role_name(spec))
    for i, resource in enumerate(spec.resources):
        physical = naming.physical_name(spec, resource)
        check = (
            v.validate_s3_bucket_name
            if resource.kind == "s3_bucket"
            else v.validate_dynamodb_table_name
        )
        err.check(f"resources[{i}].name", check, physical)
    if err.errors:
        return
    for message in policies.limit_violations(spec):
        err.add("resources" if "identity" in message else "service_accounts", message)
