"""Issue 10 with real Terraform and the sandbox: a name AWS already holds fails the plan, with
nothing created. One plan (no apply), run in-process: about the cost of `terraform init` + plan."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from provisioning.models import Run, RunKind, RunStatus, Workspace
from provisioning.services.execution import run_execute
from tests.factories import MicroserviceFactory, TeamFactory
from tests.integration.conftest import REFERENCE_RESOURCES, make_demo_cluster
from tests.integration.test_celery_runs import spec_for
from tests.sandbox_fixtures import admin_client

pytestmark = pytest.mark.integration


def test_a_bucket_name_taken_in_aws_fails_the_plan_with_nothing_created(
    tf_settings, sandbox, demo_aws, unique_name
):
    cluster = make_demo_cluster(demo_aws)
    service = MicroserviceFactory(name=unique_name, team=TeamFactory())
    workspace = Workspace.objects.create(microservice=service, cluster=cluster)
    taken = f"demo--{unique_name}--invoices"
    s3 = admin_client(sandbox, "s3")
    s3.create_bucket(Bucket=taken)  # someone else's bucket, outside any workspace state
    run = Run.objects.create(
        workspace=workspace,
        kind=RunKind.PLAN,
        spec=spec_for(demo_aws, workspace, REFERENCE_RESOURCES),
    )

    run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert f"The S3 bucket name '{taken}'" in run.error
    assert 'module.s3_bucket["invoices"]' in run.error
    assert "set S3_BUCKET_NAME_SUFFIX" in run.error and "Nothing was created" in run.error
    assert run.plan_file is None and not run.plan_sha256  # nothing an apply could use
    with pytest.raises(ClientError) as missing:
        admin_client(sandbox, "iam").get_role(RoleName=f"demo--{unique_name}")
    assert missing.value.response["Error"]["Code"] == "NoSuchEntity"
    tables = admin_client(sandbox, "dynamodb").list_tables()["TableNames"]
    assert f"demo--{unique_name}--orders" not in tables
    s3.delete_bucket(Bucket=taken)


def test_the_sweep_reports_roles_and_keys_no_workspace_holds(
    tf_settings, sandbox, demo_aws, unique_name
):
    from provisioning.models import AuditEvent
    from provisioning.services.orphans import orphans_sweep

    cluster = make_demo_cluster(demo_aws)
    iam, kms = admin_client(sandbox, "iam"), admin_client(sandbox, "kms")
    tags = [{"TagKey": "ManagedBy", "TagValue": "irsa-portal"}]
    ghost = iam.create_role(
        RoleName=f"demo--{unique_name}-ghost", Path="/irsa/", AssumeRolePolicyDocument="{}"
    )["Role"]
    ghost_key = kms.create_key(Tags=tags)["KeyMetadata"]
    kept = iam.create_role(
        RoleName=f"demo--{unique_name}", Path="/irsa/", AssumeRolePolicyDocument="{}"
    )["Role"]
    kept_key = kms.create_key(Tags=tags)["KeyMetadata"]
    Workspace.objects.create(
        microservice=MicroserviceFactory(name=unique_name, team=TeamFactory()),
        cluster=cluster,
        status="applied",
        role_arn=kept["Arn"],
        kms_key_arn=kept_key["Arn"],
    )

    reported = {(o["type"], o["arn"]) for o in orphans_sweep()}
    assert ("iam_role", ghost["Arn"]) in reported and ("kms_key", ghost_key["Arn"]) in reported
    assert ("iam_role", kept["Arn"]) not in reported
    assert ("kms_key", kept_key["Arn"]) not in reported
    event = AuditEvent.objects.get(action="orphans.reported", object_id=str(cluster.pk))
    assert {"type": "iam_role", "id": ghost["RoleName"], "arn": ghost["Arn"]} in (
        event.data["orphans"]
    )
    for role in (ghost, kept):
        iam.delete_role(RoleName=role["RoleName"])
    for key in (ghost_key, kept_key):
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)


def test_a_key_pending_deletion_shows_its_date_and_an_admin_restores_it(
    tf_settings, sandbox, demo_aws, unique_name, client, developer, team
):
    from provisioning.aws import session_for_cluster
    from provisioning.models import AuditEvent
    from provisioning.services.keys import (
        PENDING,
        KeyRestoreRefused,
        key_pending_deletion,
        workspace_key_restore,
    )
    from tests.factories import UserFactory

    cluster = make_demo_cluster(demo_aws)
    kms = admin_client(sandbox, "kms")
    key = kms.create_key()["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=30)
    pending = key_pending_deletion(
        key_arn=key["Arn"], aws=session_for_cluster(cluster, purpose="reconcile")
    )
    assert pending["state"] == "PendingDeletion" and pending["deletion_date"]
    workspace = Workspace.objects.create(
        microservice=MicroserviceFactory(name=unique_name, team=team),
        cluster=cluster,
        status="destroyed",
        outputs={PENDING: pending},
    )
    client.force_login(developer)
    page = client.get(f"/services/{unique_name}/").content.decode()
    assert key["Arn"] in page and f"pending deletion on {pending['deletion_date'][:10]}" in page

    admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
    workspace_key_restore(actor=admin, workspace=workspace)
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    assert AuditEvent.objects.get(action="workspace.kms_key_restored").actor_name == "admin"
    workspace.refresh_from_db()
    assert PENDING not in workspace.outputs
    with pytest.raises(KeyRestoreRefused):
        workspace_key_restore(actor=admin, workspace=workspace)
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
