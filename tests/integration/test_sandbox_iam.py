"""The sandbox's OIDC issuer and AssumeRoleWithWebIdentity checked like AWS: token signature,
expiry, issuer -> IAM OIDC provider, audience, and the role's trust policy.

Two services (`sandbox_services`: `a` read_write, `b` read) are set up as admin with the portal's
own policy builders; their pods get credentials from the sandbox's issuer and STS.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from provisioning.iam import naming
from sandbox.demo import DemoAws
from sandbox.oidc import TOKEN_PATH, mint_token
from sandbox.server import SandboxServer
from tests.sandbox_fixtures import NAMESPACE, REGION, SandboxService, assume_web_identity

pytestmark = pytest.mark.integration
Services = dict[str, SandboxService]


def error_of(call: Callable[[], object]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"].get("Message", ""),
    )


# --- the OIDC issuer and AssumeRoleWithWebIdentity ------------------------------------------


def test_a_listed_service_account_gets_credentials_for_its_role(
    sandbox: SandboxServer, demo_aws: DemoAws, sandbox_services: Services, sandbox_pod: Callable
) -> None:
    identity = sandbox_pod("a", "sts").get_caller_identity()

    role_name = naming.role_name(sandbox_services["a"].spec)
    assert identity["Arn"] == f"arn:aws:sts::{demo_aws.account_id}:assumed-role/{role_name}/pod"
    assert identity["Account"] == demo_aws.account_id


def test_the_sdk_default_chain_in_a_pod_gets_credentials(
    sandbox: SandboxServer,
    demo_aws: DemoAws,
    sandbox_services: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = sandbox_services["a"]
    token_file = tmp_path / "token"
    token_file.write_text(
        mint_token(
            sandbox.endpoint_url,
            issuer=demo_aws.oidc_issuer,
            namespace=NAMESPACE,
            service_account=a.service_account,
        )
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ROLE_ARN", a.role_arn)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint_url)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))

    dynamodb = boto3.Session(region_name=REGION).client("dynamodb")
    item = dynamodb.get_item(TableName=a.table, Key={"id": {"S": "1"}})["Item"]

    assert item["status"] == {"S": "new"}
    code, _, _ = error_of(
        lambda: dynamodb.get_item(TableName=sandbox_services["b"].table, Key={"id": {"S": "1"}})
    )
    assert code == "AccessDeniedException"


def _foreign_token(sandbox: SandboxServer, demo_aws: DemoAws, service_account: str) -> str:
    """The right claims, signed with a key that is not the sandbox issuer's."""
    now = int(time.time())
    claims = {
        "iss": demo_aws.oidc_issuer_url,
        "sub": f"system:serviceaccount:{NAMESPACE}:{service_account}",
        "aud": ["sts.amazonaws.com"],
        "iat": now,
        "exp": now + 600,
    }
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unlisted service account", ("AccessDenied", 403)),
        ("other namespace", ("AccessDenied", 403)),
        ("wrong audience", ("InvalidIdentityToken", 400)),
        ("unknown issuer", ("InvalidIdentityToken", 400)),
        ("bad signature", ("InvalidIdentityToken", 400)),
        ("not a token", ("InvalidIdentityToken", 400)),
    ],
)
def test_web_identity_is_refused(
    sandbox: SandboxServer,
    demo_aws: DemoAws,
    sandbox_services: Services,
    case: str,
    expected: tuple[str, int],
) -> None:
    a = sandbox_services["a"]
    mint = {
        "endpoint_url": sandbox.endpoint_url,
        "issuer": demo_aws.oidc_issuer,
        "namespace": NAMESPACE,
        "service_account": a.service_account,
    }
    tokens = {
        "unlisted service account": lambda: mint_token(**{**mint, "service_account": "intruder"}),
        "other namespace": lambda: mint_token(**{**mint, "namespace": "elsewhere"}),
        "wrong audience": lambda: mint_token(**mint, audience="api.example.com"),
        "unknown issuer": lambda: mint_token(
            **{**mint, "issuer": f"oidc.eks.{REGION}.amazonaws.com/id/{'0' * 32}"}
        ),
        "bad signature": lambda: _foreign_token(sandbox, demo_aws, a.service_account),
        "not a token": lambda: "not-a-jwt-at-all",
    }

    code, status, message = error_of(
        lambda: assume_web_identity(sandbox, a.role_arn, tokens[case]())
    )

    assert (code, status) == expected
    if code == "AccessDenied":
        assert message == "Not authorized to perform sts:AssumeRoleWithWebIdentity"


def test_an_expired_token_is_refused(
    sandbox: SandboxServer, demo_aws: DemoAws, sandbox_services: Services
) -> None:
    a = sandbox_services["a"]
    token = mint_token(
        sandbox.endpoint_url,
        issuer=demo_aws.oidc_issuer,
        namespace=NAMESPACE,
        service_account=a.service_account,
        ttl=1,
    )
    time.sleep(1.5)

    code, status, message = error_of(lambda: assume_web_identity(sandbox, a.role_arn, token))

    assert (code, status, message) == ("ExpiredTokenException", 400, "Token expired")


def test_one_role_refuses_another_services_account(
    sandbox: SandboxServer, demo_aws: DemoAws, sandbox_services: Services
) -> None:
    b_token = mint_token(
        sandbox.endpoint_url,
        issuer=demo_aws.oidc_issuer,
        namespace=NAMESPACE,
        service_account=sandbox_services["b"].service_account,
    )

    code, _, _ = error_of(
        lambda: assume_web_identity(sandbox, sandbox_services["a"].role_arn, b_token)
    )

    assert code == "AccessDenied"
    assert assume_web_identity(sandbox, sandbox_services["b"].role_arn, b_token)[
        "AccessKeyId"
    ].startswith("ASIA")


def test_tokens_carry_eks_claims_and_verify_against_the_published_keys(
    sandbox: SandboxServer, demo_aws: DemoAws
) -> None:
    token = mint_token(
        sandbox.endpoint_url, issuer=demo_aws.oidc_issuer, namespace="shop", service_account="web"
    )
    base = f"{sandbox.endpoint_url}/_sandbox/oidc/{demo_aws.oidc_issuer}/.well-known"
    discovery = json.loads(_get(f"{base}/openid-configuration"))
    keys = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(token)

    claims = jwt.decode(token, keys.key, algorithms=["RS256"], audience="sts.amazonaws.com")

    assert discovery["issuer"] == demo_aws.oidc_issuer_url == claims["iss"]
    assert claims["sub"] == "system:serviceaccount:shop:web"
    assert claims["kubernetes.io"]["namespace"] == "shop"
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "web"
    assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"issuer": "example.com", "sub": "system:serviceaccount:a:b"}, "issuer 'example.com'"),
        ({"issuer": "oidc.eks.us-east-1.amazonaws.com/id/AB", "sub": "root"}, "sub 'root' must"),
        (
            {
                "issuer": "oidc.eks.us-east-1.amazonaws.com/id/AB",
                "sub": "system:serviceaccount:a:b",
                "ttl": 0,
            },
            "ttl must be whole seconds",
        ),
        ([], "send a JSON object"),
    ],
)
def test_the_token_endpoint_says_what_to_fix(
    sandbox: SandboxServer, body: object, message: str
) -> None:
    status, answer = _post_json(sandbox.endpoint_url + TOKEN_PATH, body)

    assert status == 400
    assert message in answer["message"]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback test URL
        return response.read()


def _post_json(url: str, body: object) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - loopback test URL
        url, data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
