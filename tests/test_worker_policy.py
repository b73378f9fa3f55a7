"""The worker policy in docs/deploy.md, parsed from the doc and checked with the portal's own
policy evaluator and lint: it reaches only the portal's tagged and named resources."""

import json
import re
from pathlib import Path

import pytest

from provisioning.analysis.evaluator import evaluate

DOC = Path(__file__).parents[1] / "docs" / "deploy.md"
ACCOUNT, REGION = "123456789012", "us-east-1"
PORTAL_TAG = {"aws:ResourceTag/ManagedBy": "irsa-portal"}


def worker_policy() -> dict:
    section = DOC.read_text().split("## What the worker may do in AWS", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S).group(1)
    for placeholder, value in {
        "ACCOUNT": ACCOUNT,
        "REGION": REGION,
        "BOUNDARY": "irsa-boundary",
        "CLUSTER": "demo",
        "STATE_BUCKET": "portal-state",
        "LOCK_TABLE": "portal-locks",
    }.items():
        block = block.replace(placeholder, value)
    return json.loads(block)


def allowed(action: str, resource: str, **context: str) -> bool:
    return evaluate([worker_policy()], action=action, resource=resource, context=context).allowed


def table(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("dynamodb:DeleteTable", table("payroll")),
        ("dynamodb:UpdateTable", table("payroll")),
        ("s3:DeleteBucket", "arn:aws:s3:::company-backups"),
        ("s3:PutBucketPolicy", "arn:aws:s3:::company-backups"),
        ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/admin"),
        ("iam:AttachRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/admin"),
    ],
)
def test_the_worker_cannot_touch_what_is_not_the_portals(action, resource):
    assert not allowed(action, resource, **PORTAL_TAG)


def test_keys_are_managed_only_while_they_carry_the_portals_tag():
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/some-other-key"
    assert not allowed("kms:ScheduleKeyDeletion", key)
    assert allowed("kms:ScheduleKeyDeletion", key, **PORTAL_TAG)


def test_portal_tables_change_only_while_tagged():
    assert allowed("dynamodb:DeleteTable", table("demo-orders-orders"), **PORTAL_TAG)
    assert not allowed("dynamodb:DeleteTable", table("demo-orders-orders"))  # tag removed
    assert not allowed(
        "dynamodb:DeleteTable",
        table("demo-orders-orders"),
        **{"aws:ResourceTag/ManagedBy": "someone-else"},
    )


def test_the_portal_can_do_its_job():
    assert allowed("s3:DeleteBucket", "arn:aws:s3:::demo-orders-invoices")
    assert allowed(
        "dynamodb:CreateTable",
        table("demo-orders-orders"),
        **{"aws:RequestTag/ManagedBy": "irsa-portal"},
    )
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/irsa/irsa-boundary"
    role = f"arn:aws:iam::{ACCOUNT}:role/irsa/demo-orders"
    assert allowed("iam:CreateRole", role, **{"iam:PermissionsBoundary": boundary})
    assert not allowed("iam:CreateRole", role)  # no boundary, no role
    assert not allowed("iam:DeleteRolePermissionsBoundary", role)


def test_no_action_is_a_wildcard():
    for statement in worker_policy()["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action and "?" not in action, statement["Sid"]
