"""Pytest plugin: one local AWS sandbox (moto server) for the whole test session, and helpers
to set up services in it the way the irsa module does.

Register it from the root conftest with `pytest_plugins = ["tests.sandbox_fixtures"]`. Needs no
Django. The server is shared: a test that must start from an empty AWS starts its own with
`start_sandbox()` instead of resetting this one, which would pull the demo set-up from under the
other tests.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from provisioning.iam import naming
from provisioning.iam.policies import build_identity_policy, build_key_policy, build_trust_policy
from provisioning.iam.spec import WorkspaceSpec, parse_workspace_spec
from sandbox.demo import DemoAws, create_demo_aws
from sandbox.oidc import mint_token
from sandbox.server import SandboxServer, start_sandbox

REGION = "us-east-1"
ADMIN = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
NAMESPACE = "shop"
INDEX = "by-status"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """A moto server on a free loopback port, stopped when the session ends."""
    with start_sandbox() as server:
        yield server


@pytest.fixture(scope="session")
def demo_aws(sandbox: SandboxServer) -> DemoAws:
    """The demo cluster's OIDC provider, permissions boundary and node role in the sandbox."""
    return create_demo_aws(sandbox.endpoint_url)


@dataclass(frozen=True)
class SandboxService:
    """One workspace's role, key, table and bucket, made in the sandbox as the irsa module does."""

    spec: WorkspaceSpec
    role_arn: str
    key_arn: str
    table: str
    bucket: str

    @property
    def service_account(self) -> str:
        return self.spec.service_accounts[0]


def admin_client(sandbox: SandboxServer, service: str) -> Any:
    return boto3.client(service, endpoint_url=sandbox.endpoint_url, region_name=REGION, **ADMIN)


def provision_service(
    sandbox: SandboxServer, demo_aws: DemoAws, name: str, access: str
) -> SandboxService:
    """What the irsa module creates for one workspace, made with the portal's policy builders."""
    spec = parse_workspace_spec(
        {
            "microservice": name,
            "namespace": NAMESPACE,
            "service_accounts": [name],
            "cluster": {
                "name": "demo",
                "account_id": demo_aws.account_id,
                "region": REGION,
                "oidc_provider_arn": demo_aws.oidc_provider_arn,
            },
            "resources": [
                {
                    "kind": "dynamodb_table",
                    "name": "orders",
                    "access": access,
                    "settings": {"partition_key": {"name": "id", "type": "S"}},
                },
                {"kind": "s3_bucket", "name": "files", "access": access},
            ],
        }
    )
    table, bucket = (naming.physical_name(spec, r) for r in spec.resources)
    kms, iam = admin_client(sandbox, "kms"), admin_client(sandbox, "iam")
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    kms.put_key_policy(
        KeyId=key_arn,
        PolicyName="default",
        Policy=json.dumps(build_key_policy(spec, key_arn=key_arn)),
    )
    _create_table(admin_client(sandbox, "dynamodb"), table, key_arn)
    _create_bucket(admin_client(sandbox, "s3"), bucket, key_arn)
    iam.create_role(
        RoleName=naming.role_name(spec),
        Path=naming.ROLE_PATH,
        AssumeRolePolicyDocument=json.dumps(build_trust_policy(spec)),
        PermissionsBoundary=demo_aws.permissions_boundary_arn,
    )
    policy_arn = iam.create_policy(
        PolicyName=naming.role_name(spec),
        PolicyDocument=json.dumps(build_identity_policy(spec, key_arn=key_arn)),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=naming.role_name(spec), PolicyArn=policy_arn)
    return SandboxService(spec, naming.role_arn(spec), key_arn, table, bucket)


def _create_table(dynamodb: Any, table: str, key_arn: str) -> None:
    """Encrypted with the service's own key, as the module makes it."""
    attribute = {"AttributeName": "id", "AttributeType": "S"}
    dynamodb.create_table(
        TableName=table,
        SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[attribute, {"AttributeName": "status", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": INDEX,
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=table, Item={"id": {"S": "1"}, "status": {"S": "new"}})


def _create_bucket(s3: Any, bucket: str, key_arn: str) -> None:
    s3.create_bucket(Bucket=bucket)
    default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]
        },
    )
    s3.put_object(Bucket=bucket, Key="seed.txt", Body=b"seed")


@pytest.fixture(scope="module")
def sandbox_services(sandbox: SandboxServer, demo_aws: DemoAws) -> dict[str, SandboxService]:
    """Two services with fresh names for each test module: `a` read_write, `b` read."""
    suffix = uuid.uuid4().hex[:6]
    return {
        "a": provision_service(sandbox, demo_aws, f"a{suffix}", "read_write"),
        "b": provision_service(sandbox, demo_aws, f"b{suffix}", "read"),
    }


def assume_web_identity(
    sandbox: SandboxServer, role_arn: str, token: str, *, session: str = "pod"
) -> dict[str, str]:
    """A pod's call: boto3 sends AssumeRoleWithWebIdentity unsigned, the keys go unused."""
    sts = boto3.client("sts", endpoint_url=sandbox.endpoint_url, region_name=REGION, **ADMIN)
    return sts.assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName=session, WebIdentityToken=token
    )["Credentials"]


@pytest.fixture(scope="module")
def sandbox_pod(
    sandbox: SandboxServer, demo_aws: DemoAws, sandbox_services: dict[str, SandboxService]
) -> Callable[[str, str], Any]:
    """`sandbox_pod("a", "s3")`: a client with the credentials service a's pod gets."""
    sessions: dict[str, boto3.Session] = {}

    def client(name: str, service: str) -> Any:
        if name not in sessions:
            owner = sandbox_services[name]
            token = mint_token(
                sandbox.endpoint_url,
                issuer=demo_aws.oidc_issuer,
                namespace=NAMESPACE,
                service_account=owner.service_account,
            )
            creds = assume_web_identity(sandbox, owner.role_arn, token)
            sessions[name] = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=REGION,
            )
        return sessions[name].client(service, endpoint_url=sandbox.endpoint_url)

    return client
