"""The demo cluster's AWS side, created in the sandbox: what a platform team sets up once per
account before the portal can hand out roles.

- the EKS cluster's IAM OIDC provider, which every IRSA trust policy names;
- the permissions boundary every portal-made role must carry (see DESIGN.md, "cannot escalate");
- the worker node role, with only the policies EKS nodes need.

Idempotent: calling it again finds what exists and returns the same ARNs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from provisioning.iam.catalog import Catalog, load_catalog

# Fixed so that every demo set-up (and every test) sees the same issuer and ARNs.
DEMO_OIDC_ID = "5C1E7A3B9D2F4E6081A3C5E7092B4D6F"
OIDC_AUDIENCE = "sts.amazonaws.com"
# The SHA-1 thumbprint of the EKS OIDC endpoints' root CA. IAM no longer checks it for EKS issuers,
# but the API still requires one.
OIDC_THUMBPRINT = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
BOUNDARY_NAME = "irsa-permissions-boundary"
BOUNDARY_PATH = "/irsa/"
NODE_ROLE_NAME = "demo-eks-node"
NODE_POLICY_NAMES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
)
# Sandbox credentials: explicit, so a mistyped endpoint can never reach real AWS with real keys.
SANDBOX_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

# Stand-ins, used only when the sandbox does not load the AWS-managed policies: a few of each
# real policy's actions, enough for a node-role audit to recognise them by name.
_NODE_POLICY_STAND_INS: dict[str, list[str]] = {
    "AmazonEKSWorkerNodePolicy": [
        "ec2:DescribeInstances",
        "ec2:DescribeRouteTables",
        "eks:DescribeCluster",
    ],
    "AmazonEKS_CNI_Policy": [
        "ec2:AssignPrivateIpAddresses",
        "ec2:AttachNetworkInterface",
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
    ],
    "AmazonEC2ContainerRegistryReadOnly": [
        "ecr:BatchGetImage",
        "ecr:GetAuthorizationToken",
        "ecr:GetDownloadUrlForLayer",
    ],
}

_SID_NAMES = {"dynamodb": "DynamoDB", "kms": "KMS", "s3": "S3", "sqs": "SQS", "sns": "SNS"}


@dataclass(frozen=True)
class DemoAws:
    account_id: str
    region: str
    oidc_provider_arn: str
    oidc_issuer: str  # without the scheme, as trust-policy condition keys spell it
    permissions_boundary_arn: str
    node_role_arn: str
    node_policy_arns: tuple[str, ...]

    @property
    def oidc_issuer_url(self) -> str:
        return f"https://{self.oidc_issuer}"


def create_demo_aws(
    endpoint_url: str, *, region: str = "us-east-1", account_id: str | None = None
) -> DemoAws:
    """Create (or find) the demo account's OIDC provider, boundary and node role: in moto's
    default account, or in ``account_id`` (moto's account header; see sandbox.accounts)."""
    session = boto3.session.Session(region_name=region, **SANDBOX_CREDENTIALS)
    iam = session.client("iam", endpoint_url=endpoint_url)
    if account_id is not None:
        iam.meta.events.register("before-sign.*.*", in_account(account_id))
    else:
        sts = session.client("sts", endpoint_url=endpoint_url)
        account_id = sts.get_caller_identity()["Account"]
    issuer = f"oidc.eks.{region}.amazonaws.com/id/{DEMO_OIDC_ID}"
    return DemoAws(
        account_id=account_id,
        region=region,
        oidc_provider_arn=_ensure_oidc_provider(iam, account_id, issuer),
        oidc_issuer=issuer,
        permissions_boundary_arn=_ensure_policy(
            iam, account_id, BOUNDARY_NAME, BOUNDARY_PATH, boundary_document(load_catalog())
        ),
        node_role_arn=_ensure_node_role(iam),
        node_policy_arns=tuple(_attach_node_policy(iam, account_id, n) for n in NODE_POLICY_NAMES),
    )


def in_account(account_id: str) -> Callable[..., None]:
    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account_id

    return add_header


def boundary_document(catalog: Catalog) -> dict[str, Any]:
    """Every action the catalog can grant, and nothing else, one statement per service.

    Resource is "*" on purpose: a permissions boundary caps what a role's own policies may grant,
    it grants nothing by itself. The identity policies keep the resources narrow.
    """
    by_service: dict[str, set[str]] = {}
    for kind in catalog.kinds.values():
        for level in kind.levels.values():
            actions = [a for s in level.statements for a in s.actions] + list(level.kms_actions)
            for action in actions:
                by_service.setdefault(action.split(":", 1)[0], set()).add(action)
    statements = [
        {
            "Sid": f"Allow{_SID_NAMES.get(service, service.capitalize())}DataPlane",
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": "*",
        }
        for service, actions in sorted(by_service.items())
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def _ensure_oidc_provider(iam: Any, account_id: str, issuer: str) -> str:
    arn = f"arn:aws:iam::{account_id}:oidc-provider/{issuer}"
    _create_unless_exists(
        lambda: iam.create_open_id_connect_provider(
            Url=f"https://{issuer}", ClientIDList=[OIDC_AUDIENCE], ThumbprintList=[OIDC_THUMBPRINT]
        )
    )
    return arn


def _ensure_policy(iam: Any, account_id: str, name: str, path: str, document: dict) -> str:
    # An existing policy is left as it is: the sandbox keeps state in memory only, so it can
    # differ from this code only within one server's lifetime.
    arn = f"arn:aws:iam::{account_id}:policy{path}{name}"
    _create_unless_exists(
        lambda: iam.create_policy(PolicyName=name, Path=path, PolicyDocument=json.dumps(document))
    )
    return arn


def _ensure_node_role(iam: Any) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    _create_unless_exists(
        lambda: iam.create_role(RoleName=NODE_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    )
    return iam.get_role(RoleName=NODE_ROLE_NAME)["Role"]["Arn"]


def _attach_node_policy(iam: Any, account_id: str, name: str) -> str:
    """Attach the AWS-managed policy; fall back to a same-named local stand-in without them."""
    arn = f"arn:aws:iam::aws:policy/{name}"
    try:
        iam.attach_role_policy(RoleName=NODE_ROLE_NAME, PolicyArn=arn)
        return arn
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchEntity":
            raise
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": _NODE_POLICY_STAND_INS[name],
                "Resource": "*",
            }
        ],
    }
    arn = _ensure_policy(iam, account_id, name, "/", document)
    iam.attach_role_policy(RoleName=NODE_ROLE_NAME, PolicyArn=arn)  # attaching twice is a no-op
    return arn


def _create_unless_exists(create: Callable[[], object]) -> None:
    try:
        create()
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
