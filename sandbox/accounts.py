"""Several AWS accounts in one sandbox, as a company with dev and prod accounts has them.

moto keys its state by account: requests signed with the admin key ``testing`` and the header
``x-moto-account-id`` act in that account (set-up only), and credentials from ``sts:AssumeRole``
act in the account of the role they came from. Each cluster account gets the demo's OIDC
provider, boundary and node role plus the portal's deployment role; the worker's base
credentials are an IAM user in the portal's own account whose only permission is
``sts:AssumeRole`` on those roles (the gateway enforces user keys, so that is provable).

The deployment role carries ``docs/examples/deployment-role-policy.json``. The gateway supplies
``iam:PermissionsBoundary`` and ``iam:PolicyARN`` but no ``aws:RequestTag``/``aws:ResourceTag``,
so only the tag conditions are dropped here (docs/sandbox.md lists what it does not evaluate).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from sandbox.demo import (
    BOUNDARY_NAME,
    NODE_ROLE_NAME,
    SANDBOX_CREDENTIALS,
    DemoAws,
    create_demo_aws,
    in_account,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
DEPLOYMENT_ROLE_NAME = "irsa-portal-deployer"
DEPLOYMENT_ROLE_PATH = "/irsa-portal/"
WORKER_USER_NAME = "irsa-portal-worker"
# The second cluster account of the demo (the first is moto's default, 123456789012).
SECOND_ACCOUNT_ID = "210987654321"
_TAG_KEYS = ("aws:RequestTag/", "aws:ResourceTag/")


@dataclass(frozen=True)
class ClusterAccount:
    demo: DemoAws
    deployment_role_arn: str
    external_id: str


@dataclass(frozen=True)
class WorkerCredentials:
    user_arn: str
    access_key_id: str
    secret_access_key: str


def admin_client(endpoint_url: str, service: str, *, account_id: str, region: str) -> Any:
    """An unenforced client acting in ``account_id`` (moto's account header): set-up only."""
    client = boto3.client(
        service, endpoint_url=endpoint_url, region_name=region, **SANDBOX_CREDENTIALS
    )
    client.meta.events.register("before-sign.*.*", in_account(account_id))
    return client


def deployment_policy(*, account_id: str, region: str, conditions: bool = True) -> dict[str, Any]:
    """The documented deployment role policy for one account."""
    text = (EXAMPLES / "deployment-role-policy.json").read_text()
    for placeholder, value in (
        ("NODE_ROLE_NAME", NODE_ROLE_NAME),
        ("BOUNDARY", BOUNDARY_NAME),
        ("ACCOUNT", account_id),
        ("REGION", region),
    ):
        text = text.replace(placeholder, value)
    document = json.loads(text)
    if not conditions:
        for statement in document["Statement"]:
            _drop_tag_conditions(statement)
    return document


def _drop_tag_conditions(statement: dict[str, Any]) -> None:
    """The sandbox knows no request or resource tags; the IAM condition keys it does supply."""
    condition = statement.get("Condition") or {}
    for operator in list(condition):
        keys = {k: v for k, v in condition[operator].items() if not k.startswith(_TAG_KEYS)}
        if keys:
            condition[operator] = keys
        else:
            del condition[operator]
    if not condition:
        statement.pop("Condition", None)


def create_cluster_account(
    endpoint_url: str, *, account_id: str, worker_account_id: str, region: str = "us-east-1"
) -> ClusterAccount:
    """The demo's per-account set-up in ``account_id`` plus its deployment role."""
    demo = create_demo_aws(endpoint_url, region=region, account_id=account_id)
    iam = admin_client(endpoint_url, "iam", account_id=account_id, region=region)
    external_id = f"irsa-portal-{account_id}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{worker_account_id}:user/{WORKER_USER_NAME}"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }
    policy = deployment_policy(account_id=account_id, region=region, conditions=False)
    try:
        iam.create_role(
            RoleName=DEPLOYMENT_ROLE_NAME,
            Path=DEPLOYMENT_ROLE_PATH,
            AssumeRolePolicyDocument=json.dumps(trust),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
    iam.put_role_policy(
        RoleName=DEPLOYMENT_ROLE_NAME,
        PolicyName="irsa-portal-deployment",
        PolicyDocument=json.dumps(policy),
    )
    arn = f"arn:aws:iam::{account_id}:role{DEPLOYMENT_ROLE_PATH}{DEPLOYMENT_ROLE_NAME}"
    return ClusterAccount(demo=demo, deployment_role_arn=arn, external_id=external_id)


def create_worker_user(
    endpoint_url: str, *, account_id: str, region: str = "us-east-1"
) -> WorkerCredentials:
    """The worker's base credentials: may assume the deployment roles and nothing else."""
    iam = admin_client(endpoint_url, "iam", account_id=account_id, region=region)
    try:
        iam.create_user(UserName=WORKER_USER_NAME)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
    iam.put_user_policy(
        UserName=WORKER_USER_NAME,
        PolicyName="assume-deployment-roles",
        PolicyDocument=(EXAMPLES / "worker-base-policy.json").read_text(),
    )
    key = iam.create_access_key(UserName=WORKER_USER_NAME)["AccessKey"]
    return WorkerCredentials(
        user_arn=f"arn:aws:iam::{account_id}:user/{WORKER_USER_NAME}",
        access_key_id=key["AccessKeyId"],
        secret_access_key=key["SecretAccessKey"],
    )


def create_state_backend(
    endpoint_url: str, *, bucket: str, lock_table: str, region: str = "us-east-1"
) -> None:
    """The S3 backend's state bucket (versioned) and DynamoDB lock table (key ``LockID``), in
    the portal's own account, as docs/deploy.md asks an operator to create them once."""
    s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, **SANDBOX_CREDENTIALS)
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=endpoint_url, region_name=region, **SANDBOX_CREDENTIALS
    )
    try:
        dynamodb.create_table(
            TableName=lock_table,
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
