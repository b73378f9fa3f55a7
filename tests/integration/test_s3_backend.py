"""The production state backend (S3 + DynamoDB lock table) against the sandbox."""

from __future__ import annotations

import json

import pytest

from provisioning.models import AuditEvent, Run, RunKind, RunStatus, Workspace
from provisioning.services.runs import RunConflict
from provisioning.services.state_lock import workspace_release_state_lock, workspace_state_lock
from provisioning.terraform.runner import StateLockedError
from provisioning.terraform.toolchain import FALLBACK_TERRAFORM
from sandbox.accounts import create_state_backend
from tests.factories import ClusterFactory, MicroserviceFactory
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
    """A lock as a running Terraform writes it: the second run gets Terraform's lock error.
    With the pinned minimum Terraform 1.0.3, whose S3 backend takes the older endpoint
    arguments (the cycle above runs the Terraform on PATH)."""
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
        assert "0b5e3c1a-1111-2222-3333-444455556666" in str(raised.value) + raised.value.output
    finally:
        aws("dynamodb").delete_item(TableName=LOCK_TABLE, Key={"LockID": {"S": lock_id}})


def test_a_stale_lock_is_reported_and_released_by_an_admin(s3_backend, aws, developer, admin_user):
    """The item a run killed mid-apply leaves (as Terraform wrote it): reported on the
    workspace, release refused while a run is active, then released and audited."""
    workspace = Workspace.objects.create(
        microservice=MicroserviceFactory(name="locked"), cluster=ClusterFactory(name="demo")
    )
    lock_key = f"{BUCKET}/irsa/{workspace.state_key}.tfstate"
    info = {
        "ID": "7d1f0c2e-aaaa-bbbb-cccc-ddddeeeeffff",
        "Operation": "OperationTypeApply",
        "Who": "celery@worker-1",
        "Version": "1.11.4",
        "Created": "2026-11-27T14:02:03.000000Z",
        "Path": lock_key,
    }
    aws("dynamodb").put_item(
        TableName=LOCK_TABLE, Item={"LockID": {"S": lock_key}, "Info": {"S": json.dumps(info)}}
    )
    lock = workspace_state_lock(workspace=workspace)
    assert (lock.lock_id, lock.who, lock.created, lock.operation) == (
        info["ID"],
        "celery@worker-1",
        "2026-11-27T14:02:03.000000Z",
        "OperationTypeApply",
    )
    run = Run.objects.create(workspace=workspace, kind=RunKind.PLAN, status=RunStatus.RUNNING)
    with pytest.raises(RunConflict, match="queued or running run"):
        workspace_release_state_lock(actor=admin_user, workspace=workspace, lock_id=info["ID"])
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)
    with pytest.raises(RunConflict, match="no state lock with id"):
        workspace_release_state_lock(actor=admin_user, workspace=workspace, lock_id="other")
    workspace_release_state_lock(actor=admin_user, workspace=workspace, lock_id=info["ID"])
    assert workspace_state_lock(workspace=workspace) is None
    event = AuditEvent.objects.get(action="workspace.state_lock_released")
    assert event.actor == admin_user and event.data["lock_id"] == info["ID"]
