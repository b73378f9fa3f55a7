"""The spec boundary: every problem is reported with its field path and what to change."""

import copy
import json
from pathlib import Path

import pytest

from provisioning.iam.spec import SpecError, parse_workspace_spec

REFERENCE = json.loads(
    (Path(__file__).parents[2] / "docs/examples/reference-spec.json").read_text()
)


def spec_with(**changes):
    data = copy.deepcopy(REFERENCE)
    for path, value in changes.items():
        target = data
        *parents, last = path.split("__")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        if value is ...:
            del target[int(last) if last.isdigit() else last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return data


def errors_of(data) -> dict[str, list[str]]:
    with pytest.raises(SpecError) as exc:
        parse_workspace_spec(data)
    return exc.value.errors


def test_reference_spec_parses():
    spec = parse_workspace_spec(REFERENCE)
    assert spec.microservice == "orders"
    assert [r.name for r in spec.resources] == ["orders", "invoices"]
    assert spec.resources[0].settings["partition_key"] == {"name": "order_id", "type": "S"}
    assert spec.cluster.oidc_issuer.startswith("oidc.eks.eu-west-1.amazonaws.com/id/")


@pytest.mark.parametrize(
    ("changes", "path", "expected"),
    [
        ({"microservice": "Orders"}, "microservice", "has uppercase letters"),
        ({"microservice": ...}, "microservice", "'microservice' is required"),
        ({"namespace": "shop_1"}, "namespace", "has characters other than a-z"),
        (
            {"service_accounts": []},
            "service_accounts",
            "List at least one Kubernetes service account",
        ),
        ({"service_accounts": ["a", "a"]}, "service_accounts", "must be unique"),
        ({"service_accounts": ["Bad"]}, "service_accounts[0]", "has uppercase letters"),
        (
            {"service_accounts": [f"sa-{i}" for i in range(11)]},
            "service_accounts",
            "At most 10 service accounts",
        ),
        ({"cluster__account_id": "1234"}, "cluster.account_id", "must be exactly 12 digits"),
        ({"cluster__region": "eu-west"}, "cluster.region", "is not a region code"),
        (
            {"cluster__region": "eu-west-2"},
            "cluster.oidc_provider_arn",
            "issuer is in region eu-west-1 but the cluster's region is eu-west-2",
        ),
        (
            {"cluster__account_id": "999999999999"},
            "cluster.oidc_provider_arn",
            "in account 111122223333 but the cluster's account_id is 999999999999",
        ),
        (
            {"cluster__oidc_provider_arn": "arn:aws:iam::111122223333:role/x"},
            "cluster.oidc_provider_arn",
            "is not an EKS IAM OIDC provider ARN",
        ),
        ({"cluster": ...}, "cluster", "'cluster' is required"),
        ({"resources": []}, "resources", "List at least one resource"),
        (
            {"resources__0__kind": "sqs_queue"},
            "resources[0].kind",
            "Unknown resource kind 'sqs_queue'; use one of: dynamodb_table, s3_bucket",
        ),
        (
            {"resources__0__access": "admin"},
            "resources[0].access",
            "Unknown access level 'admin' for dynamodb_table; use one of: read, read_write",
        ),
        ({"resources__1__name": "Invoices"}, "resources[1].name", "has uppercase letters"),
        (
            {
                "resources__1__name": "orders",
                "resources__1__kind": "dynamodb_table",
                "resources__1__settings": {},
            },
            "resources[1].name",
            "is listed twice",
        ),
        (
            {"resources__0__settings": {"billing_mode": "ON_DEMAND"}},
            "resources[0].settings.billing_mode",
            "Unknown billing mode 'ON_DEMAND'; use PAY_PER_REQUEST or PROVISIONED",
        ),
        (
            {"resources__0__settings": {"billing_mode": "PROVISIONED"}},
            "resources[0].settings.read_capacity",
            "PROVISIONED billing needs 'read_capacity'",
        ),
        (
            {"resources__0__settings": {"read_capacity": 5}},
            "resources[0].settings.read_capacity",
            "only applies to PROVISIONED billing; remove it",
        ),
        (
            {"resources__0__settings": {"partition_key": {"name": "id", "type": "X"}}},
            "resources[0].settings.partition_key.type",
            "is not S, N or B",
        ),
        (
            {"resources__0__settings": {"point_in_time_recovery": "on"}},
            "resources[0].settings.point_in_time_recovery",
            "must be true or false",
        ),
        (
            {"resources__1__settings": {"versioning": "yes"}},
            "resources[1].settings.versioning",
            "must be true or false",
        ),
        (
            {"resources__1__settings": {"lifecycle": 3}},
            "resources[1].settings.lifecycle",
            "Unknown field 'lifecycle'; allowed: versioning",
        ),
        ({"owner": "me"}, "owner", "Unknown field 'owner'"),
    ],
)
def test_spec_refusals(changes, path, expected):
    errors = errors_of(spec_with(**changes))
    assert path in errors, errors
    assert any(expected in message for message in errors[path]), errors[path]


def test_derived_bucket_name_too_long_names_the_resource():
    errors = errors_of(spec_with(resources__1__name="i" * 50))
    assert "resources[1].name" in errors
    assert "S3 bucket name 'dev-eu--orders--" in errors["resources[1].name"][0]
    assert (
        "it must be 3-63. Shorten the microservice, cluster or resource name"
        in errors["resources[1].name"][0]
    )


def test_derived_role_name_over_64_characters():
    data = spec_with(microservice="m" * 60)
    errors = errors_of(data)
    assert any("IAM allows 64" in m for m in errors["microservice"])


def test_identity_policy_over_the_managed_policy_limit_is_refused_before_saving():
    # 20 tables with the longest names allowed: about 7,000 characters of ARNs alone.
    resources = [
        {
            "kind": "dynamodb_table",
            "name": f"t{i:02d}-" + "x" * 59,
            "access": ("read", "read_write")[i % 2],
        }
        for i in range(20)
    ]
    errors = errors_of(spec_with(resources=resources, microservice="m" * 50))
    assert any("over IAM's 6,144 limit for a managed policy" in m for m in errors["resources"])


def test_spec_must_be_an_object():
    assert errors_of([1, 2]) == {"": ["The spec must be a JSON object."]}
