"""How the sandbox names the action and resource of a request (pure: no server, no buckets)."""

from __future__ import annotations

import pytest

from sandbox.authz import Caller, checks_for
from sandbox.aws_request import AwsRequest
from sandbox.oidc import TokenRequestError, parse_token_request

CALLER = Caller(
    role_arn="arn:aws:iam::210987654321:role/irsa/demo-orders",
    session_arn="arn:aws:sts::210987654321:assumed-role/demo-orders/pod",
    account_id="210987654321",
    partition="aws",
)


def s3_request(method: str, path: str, query: str = "", **headers: str) -> AwsRequest:
    parsed = {}
    for part in filter(None, query.split("&")):
        name, _, value = part.partition("=")
        parsed[name] = [value]
    return AwsRequest(
        access_key_id="ASIAEXAMPLE",
        region="eu-west-1",
        service="s3",
        method=method,
        path=path,
        host=headers.pop("host", "127.0.0.1:4566"),
        query=parsed,
        headers=headers,
        secure=False,
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "action", "resource"),
    [
        ("GET", "/", "", "s3:ListAllMyBuckets", "*"),
        ("GET", "/files", "list-type=2", "s3:ListBucket", "arn:aws:s3:::files"),
        ("HEAD", "/files", "", "s3:ListBucket", "arn:aws:s3:::files"),
        ("GET", "/files", "location", "s3:GetBucketLocation", "arn:aws:s3:::files"),
        ("PUT", "/files", "policy", "s3:PutBucketPolicy", "arn:aws:s3:::files"),
        ("DELETE", "/files", "encryption", "s3:PutEncryptionConfiguration", "arn:aws:s3:::files"),
        ("GET", "/files", "uploads", "s3:ListBucketMultipartUploads", "arn:aws:s3:::files"),
        ("DELETE", "/files", "", "s3:DeleteBucket", "arn:aws:s3:::files"),
        ("GET", "/files/a/b.txt", "", "s3:GetObject", "arn:aws:s3:::files/a/b.txt"),
        ("GET", "/files/b.txt", "versionId=3", "s3:GetObjectVersion", "arn:aws:s3:::files/b.txt"),
        ("PUT", "/files/b.txt", "", "s3:PutObject", "arn:aws:s3:::files/b.txt"),
        ("PUT", "/files/b.txt", "tagging", "s3:PutObjectTagging", "arn:aws:s3:::files/b.txt"),
        ("POST", "/files/b.txt", "uploads", "s3:PutObject", "arn:aws:s3:::files/b.txt"),
        (
            "GET",
            "/files/b.txt",
            "uploadId=1",
            "s3:ListMultipartUploadParts",
            "arn:aws:s3:::files/b.txt",
        ),
        (
            "DELETE",
            "/files/b.txt",
            "uploadId=1",
            "s3:AbortMultipartUpload",
            "arn:aws:s3:::files/b.txt",
        ),
        ("DELETE", "/files/b.txt", "", "s3:DeleteObject", "arn:aws:s3:::files/b.txt"),
    ],
)
def test_s3_requests_are_named_like_iam_names_them(
    method: str, path: str, query: str, action: str, resource: str
) -> None:
    [check] = checks_for(s3_request(method, path, query), CALLER) or []

    assert (check.action, check.resource) == (action, resource)


def test_virtual_host_style_and_copy_source_are_understood() -> None:
    request = s3_request(
        "PUT",
        "/copy.txt",
        host="files.s3.eu-west-1.amazonaws.com",
        **{"x-amz-copy-source": "/src/a.txt"},
    )

    checks = checks_for(request, CALLER) or []

    assert [(c.action, c.resource) for c in checks] == [
        ("s3:PutObject", "arn:aws:s3:::files/copy.txt"),
        ("s3:GetObject", "arn:aws:s3:::src/a.txt"),
    ]


def test_services_without_enforcement_have_no_checks() -> None:
    request = s3_request("GET", "/")
    request.service = "sqs"

    assert checks_for(request, CALLER) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"issuer": "https://example.com", "sub": "system:serviceaccount:a:b"}, "issuer"),
        (
            {
                "issuer": "oidc.eks.eu-west-1.amazonaws.com/id/A1",
                "sub": "system:serviceaccount:A:b",
            },
            "sub",
        ),
        (
            {
                "issuer": "oidc.eks.eu-west-1.amazonaws.com/id/A1",
                "sub": "system:serviceaccount:a:b",
                "aud": "",
            },
            "aud",
        ),
        (
            {
                "issuer": "oidc.eks.eu-west-1.amazonaws.com/id/A1",
                "sub": "system:serviceaccount:a:b",
                "ttl": True,
            },
            "ttl",
        ),
    ],
)
def test_token_requests_name_the_field_to_fix(body: dict, message: str) -> None:
    with pytest.raises(TokenRequestError, match=f"^{message} "):
        parse_token_request(body)


def test_a_token_request_accepts_the_issuer_with_its_scheme() -> None:
    parsed = parse_token_request(
        {
            "issuer": "https://oidc.eks.eu-west-1.amazonaws.com/id/A1",
            "sub": "system:serviceaccount:a:b",
        }
    )

    assert (parsed.issuer, parsed.audience, parsed.ttl) == (
        "oidc.eks.eu-west-1.amazonaws.com/id/A1",
        "sts.amazonaws.com",
        3600,
    )
