"""The production state backend (S3 + DynamoDB lock table) against the sandbox; its locks
taken and left by real runs are in test_s3_locks.py."""

from __future__ import annotations

import json

import pytest

from provisioning.terraform.runner import StateLockedError
from provisioning.terraform.toolchain import FALLBACK_TERRAFORM
from sandbox.accounts import create_state_backend
from tests.integration.conftest import workspace_spec

pytestmark = pytest.mark.integration
BUCKET, LOCK_TABLE = "irsa-portal-state", "irsa-portal-locks"
TABLE_ONLY = [{"kind": "dynamodb_table", "name": "orders", "access": "read"}]


@pytest.fixture
def s3_backend(tf_settings, sandbox):
    create_state_backend(sandbox.endpoint_url, bucket=BUCKET, lock_table=LOCK_TABLE)
    tf_settings.TERRAFORM_BACKEND = "s3"
    tf_settings.TERRAFORM_STATE_BUCKET = BUCKET
    tf_settings.TERRAFORM_LOCK_TABLE = LOCK_TABLE
    return tf_settings


def test_plan_apply_destroy_with_state_in_s3(s3_backend, open_runner, demo_aws, aws, unique_name):
    spec = workspace_spec(demo_aws, unique_name, TABLE_ONLY)
    state_key = f"irsa_test_{unique_name}"
    runner = open_runner(spec, state_key)
    plan = runner.plan()
    assert plan.has_changes
    outputs = runner.apply(plan.plan_file)
    state = aws("s3").get_object(Bucket=BUCKET, Key=f"irsa/{state_key}.tfstate")["Body"].read()
    assert outputs["role_arn"] in json.loads(state)["outputs"]["role_arn"]["value"]
    assert not open_runner(spec, state_key).plan().has_changes
    open_runner(spec, state_key).destroy()
    state = aws("s3").get_object(Bucket=BUCKET, Key=f"irsa/{state_key}.tfstate")["Body"].read()
    assert json.loads(state)["resources"] == []
    # No lock is left behind by a run that ended.
    items = aws("dynamodb").scan(TableName=LOCK_TABLE)["Items"]
    assert not [i for i in items if "Info" in i and state_key in i["LockID"]["S"]]


def test_a_held_lock_refuses_a_second_run(s3_backend, open_runner, demo_aws, aws, unique_name):
    """A lock item as Terraform writes it, met by the pinned minimum Terraform 1.0.3, whose S3
    backend takes the older endpoint arguments: its lock error is recognised and names the lock.
    Locks taken and left by real runs (a race, a killed apply) are in test_s3_locks.py."""
    s3_backend.TERRAFORM_BIN = str(FALLBACK_TERRAFORM)
    spec = workspace_spec(demo_aws, unique_name, TABLE_ONLY)
    state_key = f"irsa_test_{unique_name}"
    runner = open_runner(spec, state_key)
    lock_id = f"{BUCKET}/irsa/{state_key}.tfstate"
    info = {
        "ID": "0b5e3c1a-1111-2222-3333-444455556666",
        "Operation": "OperationTypeApply",
        "Who": "worker@host-a",
        "Version": "1.11.4",
        "Created": "2026-11-27T14:00:00Z",
        "Path": lock_id,
    }
    aws("dynamodb").put_item(
        TableName=LOCK_TABLE, Item={"LockID": {"S": lock_id}, "Info": {"S": json.dumps(info)}}
    )
    try:
        with pytest.raises(StateLockedError) as raised:
            runner.plan()
        message = str(raised.value)
        assert "locked by lock 0b5e3c1a-1111-2222-3333-444455556666" in message
        assert "held by worker@host-a" in message and "OperationTypeApply" in message
    finally:
        aws("dynamodb").delete_item(TableName=LOCK_TABLE, Key={"LockID": {"S": lock_id}})
