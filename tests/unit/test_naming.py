"""Physical names: distinct (cluster, microservice, resource) triples never share a name, and the
spec boundary closes the holes that let bad names reach Terraform. Pure: no database."""

import copy
import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from provisioning import validation as v
from provisioning.iam import naming
from provisioning.iam.spec import (
    ClusterSpec,
    ResourceSpec,
    SpecError,
    WorkspaceSpec,
    parse_workspace_spec,
)

REFERENCE = json.loads(
    (Path(__file__).parents[2] / "docs/examples/reference-spec.json").read_text()
)
ARN = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"
KINDS = ("dynamodb_table", "s3_bucket")

# What the validators accept as a cluster, microservice or resource name (kept short so the
# search explores separators rather than long strings).
portal_names = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True).filter(
    lambda name: "--" not in name
)
triples = st.tuples(portal_names, portal_names, portal_names, st.sampled_from(KINDS))


def name_of(triple: tuple[str, str, str, str], suffix: str = "") -> str:
    cluster, microservice, resource, kind = triple
    spec = WorkspaceSpec(
        microservice=microservice,
        namespace="ns",
        service_accounts=("sa",),
        cluster=ClusterSpec(cluster, "111122223333", "eu-west-1", ARN),
        resources=(),
        bucket_suffix=suffix,
    )
    return naming.physical_name(spec, ResourceSpec(kind=kind, name=resource, access="read"))


@given(triples, triples, st.sampled_from(["", "-111122223333"]))
def test_distinct_triples_never_share_a_physical_name(a, b, suffix):
    # Tables and buckets live in different AWS namespaces: a shared name across kinds is fine.
    if a != b and a[3] == b[3]:
        assert name_of(a, suffix) != name_of(b, suffix)


@given(portal_names, portal_names, portal_names, portal_names)
def test_distinct_workspaces_never_share_a_role_or_alias(c1, m1, c2, m2):
    def spec(cluster: str, microservice: str) -> WorkspaceSpec:
        cluster_spec = ClusterSpec(cluster, "111122223333", "eu-west-1", ARN)
        return WorkspaceSpec(microservice, "ns", ("sa",), cluster_spec, ())

    if (c1, m1) != (c2, m2):
        assert naming.role_name(spec(c1, m1)) != naming.role_name(spec(c2, m2))
        assert naming.kms_alias(spec(c1, m1)) != naming.kms_alias(spec(c2, m2))


@given(triples, st.sampled_from(["", "-111122223333"]))
def test_a_physical_name_gives_its_resource_name_back(triple, suffix):
    cluster, microservice, resource, kind = triple
    cluster_spec = ClusterSpec(cluster, "111122223333", "eu-west-1", ARN)
    spec = WorkspaceSpec(microservice, "ns", ("sa",), cluster_spec, (), bucket_suffix=suffix)
    assert naming.resource_name_of(spec, kind, name_of(triple, suffix)) == resource


def test_the_reported_collision_is_gone():
    # orders-line/items and orders/line-items both used to become demo-orders-line-items.
    first = name_of(("demo", "orders-line", "items", "dynamodb_table"))
    second = name_of(("demo", "orders", "line-items", "dynamodb_table"))
    assert first == "demo--orders-line--items"
    assert second == "demo--orders--line-items"


def test_the_bucket_suffix_applies_to_buckets_only():
    assert name_of(("dev", "orders", "files", "s3_bucket"), "-111122223333") == (
        "dev--orders--files-111122223333"
    )
    assert name_of(("dev", "orders", "files", "dynamodb_table"), "-111122223333") == (
        "dev--orders--files"
    )


def spec_with(**top) -> dict:
    data = copy.deepcopy(REFERENCE)
    data.update(top)
    return data


def errors_of(data) -> dict[str, list[str]]:
    with pytest.raises(SpecError) as exc:
        parse_workspace_spec(data)
    return exc.value.errors


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"microservice": "orders--line"}, "microservice"),
        ({"cluster": {**REFERENCE["cluster"], "name": "dev--eu"}}, "cluster.name"),
    ],
)
def test_double_hyphen_is_refused_in_portal_names(data, path):
    assert "contains '--'" in errors_of(spec_with(**data))[path][0]


def test_double_hyphen_is_refused_in_resource_names():
    resources = copy.deepcopy(REFERENCE["resources"])
    resources[1]["name"] = "in--voices"
    assert "contains '--'" in errors_of(spec_with(resources=resources))["resources[1].name"][0]


def test_a_bad_bucket_suffix_is_refused():
    assert "bucket_suffix" in errors_of(spec_with(bucket_suffix="-Acct_1"))
    assert parse_workspace_spec(spec_with(bucket_suffix="-111122223333")).bucket_suffix


def test_sort_key_equal_to_partition_key_is_refused():
    resources = copy.deepcopy(REFERENCE["resources"])
    resources[0]["settings"]["sort_key"] = {"name": "order_id", "type": "N"}
    errors = errors_of(spec_with(resources=resources))
    assert "is the partition key" in errors["resources[0].settings.sort_key.name"][0]


def test_control_characters_in_key_attribute_names_are_refused():
    resources = copy.deepcopy(REFERENCE["resources"])
    resources[0]["settings"]["partition_key"] = {"name": "order\x00id", "type": "S"}
    errors = errors_of(spec_with(resources=resources))
    assert "control character" in errors["resources[0].settings.partition_key.name"][0]


@pytest.mark.parametrize(
    ("validator", "value"),
    [
        (v.validate_dns1123_label, "orders\n"),
        (v.validate_portal_name, "orders\n"),
        (v.validate_account_id, "111122223333\n"),
        (v.validate_region, "eu-west-1\n"),
        (v.validate_oidc_provider_arn, ARN + "\n"),
        (v.validate_s3_bucket_name, "dev--orders--files\n"),
        (v.validate_dynamodb_table_name, "dev--orders--items\n"),
        (v.validate_iam_role_name, "dev--orders\n"),
        (v.validate_bucket_suffix, "-111122223333\n"),
    ],
)
def test_a_trailing_newline_fails_every_name_rule(validator, value):
    validator(value.rstrip("\n"))  # the same value without it passes
    with pytest.raises(ValidationError):
        validator(value)


# --- name schemes: workspaces applied before '--' joins keep their names ----------------------

GOLDEN = Path(__file__).parents[2] / "tests" / "golden"
KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def legacy_golden(name: str) -> dict:
    """The golden policy as it was before '--' joins (the files then held these exact names)."""
    text = (GOLDEN / f"reference_{name}.json").read_text()
    return json.loads(text.replace("dev-eu--orders--", "dev-eu-orders-").replace("--", "-"))


def test_scheme_1_derives_exactly_the_old_names():
    spec = parse_workspace_spec(spec_with(name_scheme=1, bucket_suffix="-111122223333"))
    assert spec.name_scheme == 1
    assert naming.role_name(spec) == "dev-eu-orders"
    assert naming.role_arn(spec) == "arn:aws:iam::111122223333:role/irsa/dev-eu-orders"
    assert naming.kms_alias(spec) == "alias/irsa/dev-eu-orders"
    # Buckets predating the installation suffix keep their names too.
    assert naming.all_physical_names(spec) == [
        ("iam_role", "dev-eu-orders"),
        ("kms_alias", "alias/irsa/dev-eu-orders"),
        ("dynamodb_table", "dev-eu-orders-orders"),
        ("s3_bucket", "dev-eu-orders-invoices"),
    ]
    assert naming.resource_name_of(spec, "s3_bucket", "dev-eu-orders-invoices") == "invoices"
    assert naming.resource_name_of(spec, "dynamodb_table", "dev-eu--orders--orders") is None


def test_scheme_1_policies_match_the_pre_upgrade_golden_files():
    from provisioning.iam.policies import build_identity_policy, build_key_policy

    spec = parse_workspace_spec(spec_with(name_scheme=1))
    identity = build_identity_policy(spec, key_arn=KEY_ARN)
    assert identity == legacy_golden("identity_policy")
    assert "arn:aws:dynamodb:eu-west-1:111122223333:table/dev-eu-orders-orders" in json.dumps(
        identity
    )
    assert build_key_policy(spec, key_arn=KEY_ARN) == legacy_golden("key_policy")


def test_scheme_2_is_the_default_and_derives_the_new_names():
    for data in (spec_with(bucket_suffix="-1"), spec_with(bucket_suffix="-1", name_scheme=2)):
        spec = parse_workspace_spec(data)
        assert spec.name_scheme == 2
        assert naming.all_physical_names(spec) == [
            ("iam_role", "dev-eu--orders"),
            ("kms_alias", "alias/irsa/dev-eu--orders"),
            ("dynamodb_table", "dev-eu--orders--orders"),
            ("s3_bucket", "dev-eu--orders--invoices-1"),
        ]


@pytest.mark.parametrize("scheme", [0, 3, "1", True, None, 1.5])
def test_only_scheme_1_or_2_is_accepted(scheme):
    [message] = errors_of(spec_with(name_scheme=scheme))["name_scheme"]
    assert "must be 1" in message and "or 2" in message


def test_a_legacy_workspace_keeps_names_with_double_hyphens():
    # Before the upgrade '--' was allowed inside names; refusing it now would force a rename,
    # and a renamed table is a replaced table.
    resources = copy.deepcopy(REFERENCE["resources"])
    resources[0]["name"] = "orders--v2"
    spec = parse_workspace_spec(spec_with(resources=resources, name_scheme=1))
    assert naming.physical_name(spec, spec.resources[0]) == "dev-eu-orders-orders--v2"
    assert naming.resource_name_of(spec, "dynamodb_table", "dev-eu-orders-orders--v2") == (
        "orders--v2"
    )
    assert "contains '--'" in errors_of(spec_with(resources=resources))["resources[0].name"][0]
