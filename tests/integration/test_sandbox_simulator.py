"""iam:SimulatePrincipalPolicy answered by the sandbox, through boto3's own client: the role's
live policies and boundary, extra input policies, context entries and a resource policy."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.demo import DemoAws
from sandbox.server import SandboxServer
from tests.sandbox_fixtures import SandboxService, admin_client

pytestmark = pytest.mark.integration
Services = dict[str, SandboxService]


def table_arn(service: SandboxService) -> str:
    return f"arn:aws:dynamodb:us-east-1:{service.spec.cluster.account_id}:table/{service.table}"


def simulate(sandbox: SandboxServer, **kwargs: Any) -> list[dict[str, Any]]:
    return admin_client(sandbox, "iam").simulate_principal_policy(**kwargs)["EvaluationResults"]


def test_the_roles_own_table_is_allowed_and_the_neighbours_implicitly_denied(
    sandbox: SandboxServer, sandbox_services: Services
) -> None:
    a, b = sandbox_services["a"], sandbox_services["b"]

    results = simulate(
        sandbox,
        PolicySourceArn=a.role_arn,
        ActionNames=["dynamodb:GetItem", "dynamodb:DeleteTable"],
        ResourceArns=[table_arn(a), table_arn(b)],
    )

    decisions = {(r["EvalActionName"], r["EvalResourceName"]): r for r in results}
    own = decisions[("dynamodb:GetItem", table_arn(a))]
    assert own["EvalDecision"] == "allowed"
    assert own["MatchedStatements"] == [
        {"SourcePolicyId": a.role_arn.rsplit("/", 1)[1], "SourcePolicyType": "user-managed"}
    ]
    assert own["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    assert decisions[("dynamodb:GetItem", table_arn(b))]["EvalDecision"] == "implicitDeny"
    delete = decisions[("dynamodb:DeleteTable", table_arn(a))]
    assert delete["EvalDecision"] == "implicitDeny"
    assert delete["MatchedStatements"] == []
    assert delete["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}


def test_an_explicit_deny_in_an_input_policy_wins(
    sandbox: SandboxServer, sandbox_services: Services
) -> None:
    a = sandbox_services["a"]
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "NoReads", "Effect": "Deny", "Action": "dynamodb:GetItem", "Resource": "*"}
        ],
    }

    [result] = simulate(
        sandbox,
        PolicySourceArn=a.role_arn,
        ActionNames=["dynamodb:GetItem"],
        ResourceArns=[table_arn(a)],
        PolicyInputList=[json.dumps(deny)],
    )

    assert result["EvalDecision"] == "explicitDeny"
    assert result["MatchedStatements"] == [
        {"SourcePolicyId": "PolicyInputList.1", "SourcePolicyType": "none"}
    ]


def test_kms_through_the_service_needs_the_via_service_context(
    sandbox: SandboxServer, sandbox_services: Services
) -> None:
    a = sandbox_services["a"]
    request = {
        "PolicySourceArn": a.role_arn,
        "ActionNames": ["kms:Decrypt"],
        "ResourceArns": [a.key_arn],
    }
    via_s3 = {
        "ContextKeyName": "kms:ViaService",
        "ContextKeyValues": ["s3.us-east-1.amazonaws.com"],
        "ContextKeyType": "string",
    }

    [direct] = simulate(sandbox, **request)
    [through_s3] = simulate(sandbox, **request, ContextEntries=[via_s3])

    assert direct["EvalDecision"] == "implicitDeny"
    assert direct["MissingContextValues"] == ["kms:ViaService"]
    assert through_s3["EvalDecision"] == "allowed"
    assert through_s3["MissingContextValues"] == []


def test_a_resource_policy_naming_the_role_grants_alone(
    sandbox: SandboxServer, sandbox_services: Services
) -> None:
    a, b = sandbox_services["a"], sandbox_services["b"]
    bucket_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ShareWithA",
                "Effect": "Allow",
                "Principal": {"AWS": a.role_arn},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{b.bucket}/*",
            }
        ],
    }

    [result] = simulate(
        sandbox,
        PolicySourceArn=a.role_arn,
        ActionNames=["s3:GetObject"],
        ResourceArns=[f"arn:aws:s3:::{b.bucket}/seed.txt"],
        ResourcePolicy=json.dumps(bucket_policy),
    )

    assert result["EvalDecision"] == "allowed"
    assert result["MatchedStatements"] == [
        {"SourcePolicyId": "ResourcePolicy", "SourcePolicyType": "resource"}
    ]


def test_unknown_principal_and_bad_input_are_clear_errors(
    sandbox: SandboxServer, demo_aws: DemoAws
) -> None:
    iam = admin_client(sandbox, "iam")

    with pytest.raises(ClientError) as missing:
        iam.simulate_principal_policy(
            PolicySourceArn="arn:aws:iam::123456789012:role/nobody", ActionNames=["s3:GetObject"]
        )
    with pytest.raises(ClientError) as malformed:
        iam.simulate_principal_policy(
            PolicySourceArn=demo_aws.node_role_arn,
            ActionNames=["s3:GetObject"],
            PolicyInputList=["{not json"],
        )

    assert missing.value.response["Error"]["Code"] == "NoSuchEntity"
    assert malformed.value.response["Error"]["Code"] == "InvalidInput"
    assert "PolicyInputList.member.1" in malformed.value.response["Error"]["Message"]
