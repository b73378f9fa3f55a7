"""The workspace renderer: structure in main.tf.json, every user value in terraform.tfvars.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from provisioning.iam import naming, policies
from provisioning.iam.catalog import load_catalog
from provisioning.iam.spec import DYNAMODB_BILLING_MODES, DYNAMODB_KEY_TYPES, parse_workspace_spec
from provisioning.terraform.render import (
    BACKENDS,
    MAIN_FILE,
    SANDBOX_SERVICES,
    TFVARS_FILE,
    render_workspace,
)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = json.loads((ROOT / "docs/examples/reference-spec.json").read_text())
SANDBOX = "http://127.0.0.1:5055"
BOUNDARY = "arn:aws:iam::210987654321:policy/irsa-boundary-zz"
OTHER = {
    "microservice": "zebra-ledger",
    "namespace": "team-quokka",
    "service_accounts": ["quokka-worker", "quokka-api"],
    "cluster": {
        "name": "kiwi-prod",
        "account_id": "210987654321",
        "region": "ap-southeast-2",
        "oidc_provider_arn": "arn:aws:iam::210987654321:oidc-provider/"
        "oidc.eks.ap-southeast-2.amazonaws.com/id/F00DFACE0123456789ABCDEF01234567",
    },
    "resources": [
        {
            "kind": "dynamodb_table",
            "name": "gizmo-items",
            "access": "read",
            "settings": {
                "partition_key": {"name": "gizmo_pk", "type": "N"},
                "sort_key": {"name": "gizmo_sk", "type": "B"},
                "billing_mode": "PROVISIONED",
                "read_capacity": 7,
                "write_capacity": 3,
                "deletion_protection": True,
                "point_in_time_recovery": True,
            },
        },
        {
            "kind": "s3_bucket",
            "name": "gizmo-files",
            "access": "read_write",
            "settings": {"versioning": False},
        },
    ],
}
SPECS = {"reference": REFERENCE, "other": OTHER}
KINDS = set(load_catalog().kinds)
# Settings vocabulary: fixed words, not user data. They may occur inside longer identifiers
# ("read_capacity"), never as a value or key of their own. Kinds name the modules (one per kind).
VOCABULARY = {"read", "read_write"} | set(DYNAMODB_KEY_TYPES) | set(DYNAMODB_BILLING_MODES)
ROOT_OUTPUTS = {
    "role_arn",
    "role_name",
    "policy_arn",
    "policy_json",
    "trust_policy_json",
    "kms_key_arn",
    "kms_key_id",
    "kms_alias",
    "key_policy_json",
    "resource_arns",
}


def render(data: dict, **kwargs: Any) -> tuple[dict, dict, str]:
    spec = parse_workspace_spec(data)
    kwargs.setdefault("region", spec.cluster.region)
    files = render_workspace(spec, **kwargs)
    assert set(files) == {MAIN_FILE, TFVARS_FILE}
    return json.loads(files[MAIN_FILE]), json.loads(files[TFVARS_FILE]), files[MAIN_FILE]


def strings(value: Any) -> list[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def values(value: Any) -> list[str]:
    """Every string value in a JSON document (the spec's field names are schema, not data)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for v in value for s in values(v)]
    return strings(value)


def user_values(data: dict) -> set[str]:
    spec = parse_workspace_spec(data)
    derived = {
        naming.role_name(spec),
        naming.kms_alias(spec),
        spec.cluster.oidc_issuer,
        *policies.service_account_subjects(spec),
        *policies.via_services(spec),
        *(naming.physical_name(spec, r) for r in spec.resources),
    }
    return set(values(data)) | derived


@pytest.mark.parametrize("sandbox", [None, SANDBOX])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_no_user_value_in_main(name: str, sandbox: str | None):
    main, _, text = render(SPECS[name], sandbox_endpoint=sandbox, permissions_boundary_arn=BOUNDARY)
    tokens = set(strings(main))
    for value in sorted(user_values(SPECS[name]) - KINDS | {BOUNDARY, SANDBOX}):
        if value in VOCABULARY:
            assert value not in tokens, value
        else:
            assert value not in text, value


@pytest.mark.parametrize("sandbox", [None, SANDBOX])
def test_main_is_the_same_for_every_spec(sandbox: str | None):
    assert (
        render(REFERENCE, sandbox_endpoint=sandbox)[2] == render(OTHER, sandbox_endpoint=sandbox)[2]
    )


def test_files_are_sorted_indented_json_with_trailing_newline():
    spec = parse_workspace_spec(REFERENCE)
    for text in render_workspace(spec, region="eu-west-1").values():
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("sandbox", [None, SANDBOX])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_variable_is_declared_and_given(name: str, sandbox: str | None):
    main, tfvars, text = render(SPECS[name], sandbox_endpoint=sandbox)
    referenced = set(re.findall(r"\bvar\.([a-z0-9_]+)", text))
    declared = set(main["variable"])
    assert referenced <= declared
    assert set(tfvars) == declared


def test_tfvars_carry_the_derived_names_and_settings():
    spec = parse_workspace_spec(OTHER)
    _, tfvars, _ = render(OTHER, permissions_boundary_arn=BOUNDARY, key_deletion_window_days=30)
    assert tfvars["role_name"] == naming.role_name(spec)
    assert tfvars["role_path"] == naming.ROLE_PATH
    assert tfvars["kms_alias"] == naming.kms_alias(spec)
    assert tfvars["service_account_subjects"] == policies.service_account_subjects(spec)
    assert tfvars["via_services"] == policies.via_services(spec)
    assert tfvars["oidc_provider_arn"] == spec.cluster.oidc_provider_arn
    assert tfvars["oidc_issuer"] == spec.cluster.oidc_issuer
    assert tfvars["permissions_boundary_arn"] == BOUNDARY
    assert tfvars["key_deletion_window_days"] == 30
    assert tfvars["dynamodb_tables"] == {
        "gizmo-items": {
            "kind": "dynamodb_table",
            "access": "read",
            "name": "kiwi-prod--zebra-ledger--gizmo-items",
            "hash_key": {"name": "gizmo_pk", "type": "N"},
            "range_key": {"name": "gizmo_sk", "type": "B"},
            "billing_mode": "PROVISIONED",
            "read_capacity": 7,
            "write_capacity": 3,
            "deletion_protection": True,
            "point_in_time_recovery": True,
        }
    }
    assert tfvars["s3_buckets"] == {
        "gizmo-files": {
            "kind": "s3_bucket",
            "access": "read_write",
            "name": "kiwi-prod--zebra-ledger--gizmo-files",
            "versioning": False,
        }
    }


def test_defaults_in_tfvars():
    _, tfvars, _ = render(REFERENCE)
    assert tfvars["permissions_boundary_arn"] is None
    assert tfvars["key_deletion_window_days"] == 7
    table = tfvars["dynamodb_tables"]["orders"]
    assert (table["range_key"], table["read_capacity"], table["billing_mode"]) == (
        None,
        None,
        "PAY_PER_REQUEST",
    )
    assert "sandbox_endpoint" not in tfvars


def test_real_aws_provider_has_no_sandbox_settings():
    main, _, text = render(REFERENCE)
    assert main["provider"] == {
        "aws": {"region": "${var.region}", "allowed_account_ids": ["${var.account_id}"]}
    }
    assert "sandbox_endpoint" not in main["variable"]
    assert "deny_insecure_transport" not in main["module"]["s3_bucket"]
    for word in ("endpoints", "skip_", "s3_use_path_style", "127.0.0.1", "localhost"):
        assert word not in text


def test_sandbox_provider_points_every_service_at_the_endpoint():
    main, tfvars, _ = render(REFERENCE, sandbox_endpoint=SANDBOX)
    aws = main["provider"]["aws"]
    assert aws["endpoints"] == {s: "${var.sandbox_endpoint}" for s in SANDBOX_SERVICES}
    assert set(SANDBOX_SERVICES) == {"iam", "sts", "kms", "dynamodb", "s3"}
    for flag in (
        "s3_use_path_style",
        "skip_credentials_validation",
        "skip_metadata_api_check",
        "skip_requesting_account_id",
        "skip_region_validation",
    ):
        assert aws[flag] is True, flag
    assert tfvars["sandbox_endpoint"] == SANDBOX
    assert main["module"]["s3_bucket"]["deny_insecure_transport"] is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_block_is_empty(backend: str):
    main, tfvars, text = render(REFERENCE, backend=backend)
    assert main["terraform"]["backend"] == {backend: {}}
    for word in ("conn_str", "password", "postgres://", "schema_name"):
        assert word not in text
    assert not {"conn_str", "password", "backend"} & set(tfvars)


def test_module_sources_exist_and_root_outputs():
    main, _, _ = render(REFERENCE)
    assert set(main["module"]) == {"kms_key", "irsa", *KINDS}
    for module in main["module"].values():
        source = module["source"]
        assert source.startswith("./modules/")
        assert (ROOT / "terraform" / source.removeprefix("./")).is_dir(), source
    assert set(main["output"]) == ROOT_OUTPUTS
    assert main["terraform"]["required_version"] == ">= 1.0"
    assert main["terraform"]["required_providers"]["aws"]["source"] == "hashicorp/aws"


def test_key_policy_statements_follow_the_python_builder():
    main, _, _ = render(REFERENCE)
    spec = parse_workspace_spec(REFERENCE)
    expected = policies.build_key_policy(spec, key_arn="arn:aws:kms:eu-west-1:1:key/x")
    rendered = main["locals"]["key_policy"]
    assert [s["Sid"] for s in rendered["Statement"]] == [s["Sid"] for s in expected["Statement"]]
    assert rendered["Version"] == expected["Version"]
    assert rendered["Statement"][1]["Condition"] == expected["Statement"][1]["Condition"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backend": "consul"}, "Unknown backend"),
        ({"region": "us-east-1"}, "not the cluster's region"),
        ({"key_deletion_window_days": 6}, "from 7 to 30"),
        ({"key_deletion_window_days": 31}, "from 7 to 30"),
        ({"key_deletion_window_days": True}, "from 7 to 30"),
        ({"sandbox_endpoint": "127.0.0.1:5055"}, "http"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, message: str):
    spec = parse_workspace_spec(REFERENCE)
    kwargs = {"region": "eu-west-1", **kwargs}
    with pytest.raises(ValueError, match=message):
        render_workspace(spec, **kwargs)
