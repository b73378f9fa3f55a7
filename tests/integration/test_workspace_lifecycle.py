"""The IRSA module applied for real: plan, apply, read back from AWS, no-op plan, growth, drift,
destroy — with Terraform on PATH and the pinned Terraform 1.0.3."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from provisioning.iam import naming
from provisioning.iam.policies import build_identity_policy, build_key_policy, build_trust_policy
from provisioning.terraform.runner import StalePlanError
from tests.integration.conftest import REFERENCE_RESOURCES, workspace_spec

pytestmark = pytest.mark.integration


def attached_policy_document(iam, role_name: str) -> dict:
    (attached,) = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
    return iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)[
        "PolicyVersion"
    ]["Document"]


def test_reference_workspace_applies_and_matches_the_preview(
    terraform_bin, open_runner, demo_aws, aws, unique_name
):
    spec = workspace_spec(demo_aws, unique_name, REFERENCE_RESOURCES)
    state_key = f"irsa_test_{unique_name}"
    log: list[str] = []
    runner = open_runner(spec, state_key, log)
    plan = runner.plan()
    assert plan.has_changes and not plan.summary["destroy"]
    assert any("aws_iam_role.this" in a for a in plan.summary["add"])
    out = runner.apply(plan.plan_file)
    assert out == runner.outputs(), "the apply's own outputs differ from `output -json`"
    assert "Outputs:" in log and f'  role_arn = "{naming.role_arn(spec)}"' in log
    key_arn = out["kms_key_arn"]

    iam, kms = aws("iam"), aws("kms")
    role = iam.get_role(RoleName=naming.role_name(spec))["Role"]
    assert role["Arn"] == out["role_arn"] == naming.role_arn(spec)
    assert role["AssumeRolePolicyDocument"] == build_trust_policy(spec)
    assert attached_policy_document(iam, role["RoleName"]) == build_identity_policy(
        spec, key_arn=key_arn
    )
    assert kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"] is True
    key_policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    assert key_policy == build_key_policy(spec, key_arn=key_arn)

    table = aws("dynamodb").describe_table(TableName=naming.physical_name(spec, spec.resources[0]))[
        "Table"
    ]
    assert table["SSEDescription"]["KMSMasterKeyArn"] == key_arn
    assert table["KeySchema"] == [{"AttributeName": "order_id", "KeyType": "HASH"}]
    s3 = aws("s3")
    bucket = naming.physical_name(spec, spec.resources[1])
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key_arn,
    }
    assert rule["BucketKeyEnabled"] is True
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())

    again = open_runner(spec, state_key).plan()
    assert not again.has_changes, again.summary

    open_runner(spec, state_key).destroy()
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam.get_role(RoleName=role["RoleName"])
    assert kms.describe_key(KeyId=key_arn)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=bucket)
    assert all("testing" not in line for line in log), "the AWS secret reached the log"


def test_growth_and_drift_show_up_in_the_plan(tf_settings, open_runner, demo_aws, aws, unique_name):
    spec = workspace_spec(demo_aws, unique_name, REFERENCE_RESOURCES)
    state_key = f"irsa_test_{unique_name}"
    runner = open_runner(spec, state_key)
    runner.apply(runner.plan().plan_file)

    grown = workspace_spec(
        demo_aws,
        unique_name,
        [*REFERENCE_RESOURCES, {"kind": "s3_bucket", "name": "archive", "access": "read"}],
    )
    plan = open_runner(grown, state_key).plan()
    assert plan.summary["add"] and all(
        a.startswith('module.s3_bucket["archive"].') for a in plan.summary["add"]
    )
    assert [a for a in plan.summary["change"]] == ["module.irsa.aws_iam_policy.this"]
    assert plan.summary["replace"] == plan.summary["destroy"] == []

    # Two plans made from the same state: once one is applied, the other is stale and refused.
    sibling = open_runner(spec, state_key).plan()
    open_runner(grown, state_key).apply(plan.plan_file)
    with pytest.raises(StalePlanError, match="stale"):
        open_runner(spec, state_key).apply(sibling.plan_file)

    iam = aws("iam")
    role_name = naming.role_name(spec)
    loose = build_trust_policy(spec)
    loose["Statement"][0]["Condition"]["StringEquals"].pop(f"{spec.cluster.oidc_issuer}:sub")
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(loose))
    drift = open_runner(grown, state_key).plan()
    assert drift.summary["change"] == ["module.irsa.aws_iam_role.this"]

    iam.put_role_policy(
        RoleName=role_name,
        PolicyName="backdoor",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::other/*",
                    }
                ],
            }
        ),
    )
    drift = open_runner(grown, state_key).plan()
    assert "module.irsa.aws_iam_role_policies_exclusive.this" in drift.summary["change"]

    repair = open_runner(grown, state_key)
    repair.apply(repair.plan().plan_file)
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == []
    assert iam.get_role(RoleName=role_name)["Role"][
        "AssumeRolePolicyDocument"
    ] == build_trust_policy(spec)
    open_runner(grown, state_key).destroy()
