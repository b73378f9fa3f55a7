"""Issue 10 with real Terraform and the sandbox: decommissioning a service whose table and bucket
hold data. One apply, a destroy plan refused for the protected table, one destroy plan and one
destroy apply that fails on the non-empty bucket (the injected failure: buckets are never
force-destroyed), all in-process: six Terraform runs (~2 min on a quiet machine)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from provisioning.models import Run, RunKind, RunStatus, VerificationStatus, Workspace
from provisioning.services.execution import run_execute
from provisioning.services.reconcile import workspace_reconcile
from tests.factories import MicroserviceFactory, TeamFactory
from tests.integration.conftest import REFERENCE_RESOURCES, make_demo_cluster, other_sessions
from tests.integration.test_celery_runs import spec_for
from tests.sandbox_fixtures import admin_client

pytestmark = pytest.mark.integration


def execute(workspace: Workspace, kind: str, spec: dict, **fields) -> Run:
    run = Run.objects.create(workspace=workspace, kind=kind, spec=spec, **fields)
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def test_a_decommission_with_data_lists_it_revokes_access_first_and_keeps_the_inventory_true(
    tf_settings, sandbox, demo_aws, unique_name
):
    cluster = make_demo_cluster(demo_aws)
    service = MicroserviceFactory(name=unique_name, team=TeamFactory())
    workspace = Workspace.objects.create(microservice=service, cluster=cluster)
    spec = spec_for(demo_aws, workspace, REFERENCE_RESOURCES)
    sessions = other_sessions()
    plan = execute(workspace, RunKind.PLAN, spec)
    assert plan.status == RunStatus.SUCCEEDED, plan.error
    apply = execute(workspace, RunKind.APPLY, spec, plan_run=plan)
    assert apply.status == RunStatus.SUCCEEDED, apply.error
    workspace.refresh_from_db()
    assert workspace.verification_status == VerificationStatus.VERIFIED, workspace.verification
    # The pre-flight's and the verification's threads (and the log's) leave no session open.
    assert other_sessions() <= sessions
    table, bucket = f"demo--{unique_name}--orders", f"demo--{unique_name}--invoices"
    admin_client(sandbox, "dynamodb").put_item(TableName=table, Item={"order_id": {"S": "1"}})
    admin_client(sandbox, "s3").put_object(Bucket=bucket, Key="invoice-1.pdf", Body=b"%PDF")

    dynamodb = admin_client(sandbox, "dynamodb")
    dynamodb.update_table(TableName=table, DeletionProtectionEnabled=True)
    refused = execute(workspace, RunKind.PLAN, spec, destroy_plan=True)
    assert refused.status == RunStatus.FAILED and refused.plan_file is None
    assert f"The DynamoDB table '{table}'" in refused.error
    assert "has deletion protection on" in refused.error
    assert "'deletion_protection': false" in refused.error  # the steps to take
    dynamodb.update_table(TableName=table, DeletionProtectionEnabled=False)  # steps taken

    destroy_plan = execute(workspace, RunKind.PLAN, spec, destroy_plan=True)
    assert destroy_plan.status == RunStatus.SUCCEEDED, destroy_plan.error
    at_risk = {e["name"]: e for e in destroy_plan.plan_summary["data_at_risk"]}
    assert at_risk[table]["items"] == 1 and at_risk[table]["kind"] == "DynamoDB table"
    assert at_risk[bucket]["objects"] == 1 and at_risk[bucket]["bytes"] == 4
    assert not at_risk[bucket]["truncated"]

    destroy = execute(workspace, RunKind.APPLY, spec, plan_run=destroy_plan)
    assert destroy.status == RunStatus.FAILED
    assert "BucketNotEmpty" in destroy.log
    # Access went first: the role and its policy are gone although the bucket is not.
    with pytest.raises(ClientError):
        admin_client(sandbox, "iam").get_role(RoleName=f"demo--{unique_name}")
    admin_client(sandbox, "s3").head_bucket(Bucket=bucket)

    workspace_reconcile(workspace_id=workspace.pk)  # what the failed run's follow-up task runs
    workspace.refresh_from_db()
    assert workspace.role_arn == "" and workspace.policy_arn == ""
    assert workspace.kms_key_arn == "" and workspace.kms_alias == ""
    assert workspace.resource_arns == {"s3_bucket/invoices": f"arn:aws:s3:::{bucket}"}
