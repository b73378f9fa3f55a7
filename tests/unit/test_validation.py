"""Every boundary rule, table-driven, each asserting the message that tells the user what to do."""

import pytest
from django.core.exceptions import ValidationError

from provisioning import validation as v


def message_of(validator, value) -> str:
    with pytest.raises(ValidationError) as exc:
        validator(value)
    return " ".join(exc.value.messages)


def label(value):
    v.validate_dns1123_label(value, what="microservice name")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "The microservice name is empty"),
        ("a" * 64, "is 64 characters"),
        ("Orders", "has uppercase letters; a microservice name must be a DNS-1123 label"),
        ("Orders", "Use 'orders'"),
        ("orders_svc", "has characters other than a-z, 0-9 and '-'"),
        ("orders.svc", "has characters other than a-z, 0-9 and '-'"),
        ("-orders", "starts or ends with '-'"),
        ("orders-", "starts or ends with '-'"),
    ],
)
def test_dns1123_label_refusals(value, expected):
    assert expected in message_of(label, value)


@pytest.mark.parametrize("value", ["a", "orders", "orders-v2", "0rders", "a" * 63])
def test_dns1123_label_accepts(value):
    label(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ab", "is 2 characters; it must be 3-63"),
        ("a" * 64, "is 64 characters; it must be 3-63"),
        ("My-Bucket", "may only contain lowercase letters, digits, '.' and '-'"),
        ("my_bucket", "may only contain lowercase letters, digits, '.' and '-'"),
        ("-bucket", "must start and end with a letter or digit"),
        ("bucket.", "must start and end with a letter or digit"),
        ("my..bucket", "must not contain two adjacent periods"),
        ("192.168.5.4", "must not be formatted as an IP address"),
        ("xn--bucket", "must not start with the reserved prefix 'xn--'"),
        ("sthree-bucket", "reserved prefix 'sthree-'"),
        ("bucket-s3alias", "must not end with the reserved suffix '-s3alias'"),
        ("bucket--ol-s3", "reserved suffix '--ol-s3'"),
    ],
)
def test_s3_bucket_name_refusals(value, expected):
    assert expected in message_of(v.validate_s3_bucket_name, value)


@pytest.mark.parametrize("value", ["abc", "my-bucket.logs", "a" * 63, "192.168.5"])
def test_s3_bucket_name_accepts(value):
    v.validate_s3_bucket_name(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ab", "is 2 characters; it must be 3-255"),
        ("a" * 256, "is 256 characters; it must be 3-255"),
        ("orders table", "may only contain letters, digits, '_', '-' and '.'"),
        ("orders/x", "may only contain letters, digits, '_', '-' and '.'"),
    ],
)
def test_dynamodb_table_name_refusals(value, expected):
    assert expected in message_of(v.validate_dynamodb_table_name, value)


@pytest.mark.parametrize("value", ["abc", "Orders_v2.prod-1", "a" * 255])
def test_dynamodb_table_name_accepts(value):
    v.validate_dynamodb_table_name(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("r" * 65, "is 65 characters; IAM allows 64"),
        ("role name", "may only contain letters, digits and '+=,.@_-'"),
        ("", "may only contain letters"),
    ],
)
def test_iam_role_name_refusals(value, expected):
    assert expected in message_of(v.validate_iam_role_name, value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12345678901", "must be exactly 12 digits"),
        ("1234567890123", "must be exactly 12 digits"),
        ("12345678901a", "must be exactly 12 digits"),
        (123456789012, "keep leading zeros; quote it"),
    ],
)
def test_account_id_refusals(value, expected):
    assert expected in message_of(v.validate_account_id, value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("EU-WEST-1", "use the form 'eu-west-1'"),
        ("euwest1", "is not a region code"),
        ("eu-west", "is not a region code"),
    ],
)
def test_region_refusals(value, expected):
    assert expected in message_of(v.validate_region, value)


@pytest.mark.parametrize("value", ["eu-west-1", "us-east-2", "us-gov-west-1", "ap-southeast-3"])
def test_region_accepts(value):
    v.validate_region(value)


ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/5C7A1E8B9D4F2A6E3B0C1D2E3F4A5B6C"


@pytest.mark.parametrize(
    "value",
    [
        f"arn:aws:iam::111122223333:role/{ISSUER}",
        f"arn:aws:iam::11112222333:oidc-provider/{ISSUER}",
        "arn:aws:iam::111122223333:oidc-provider/accounts.google.com",
        f"arn:aws:iam::111122223333:oidc-provider/https://{ISSUER}",
    ],
)
def test_oidc_provider_arn_refusals(value):
    assert "is not an EKS IAM OIDC provider ARN; expected" in message_of(
        v.validate_oidc_provider_arn, value
    )


def test_oidc_provider_arn_parts():
    parts = v.parse_oidc_provider_arn(f"arn:aws:iam::111122223333:oidc-provider/{ISSUER}")
    assert parts == {
        "partition": "aws",
        "account": "111122223333",
        "issuer": ISSUER,
        "region": "eu-west-1",
    }
