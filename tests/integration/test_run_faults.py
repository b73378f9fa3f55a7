"""Faults during an apply, with real Terraform, the sandbox, PostgreSQL and a real Celery worker.

- The worker's pool child is SIGKILLed mid-apply: Terraform (in a session of its own) finishes,
  the reaper task adopts the run on the same host, the run succeeds and the change request is
  applied; nothing is orphaned.
- Terraform itself is SIGKILLed mid-apply, after it created the KMS key: the run fails ("killed by
  SIGKILL"), the change request is failed, the reconciliation lists what AWS holds outside the
  state, importing it and re-planning recover.
After each, the inventory equals what the sandbox holds for the service.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from provisioning import tasks
from provisioning.iam.spec import parse_workspace_spec
from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    ChangeStatus,
    Run,
    RunKind,
    RunStatus,
    Workspace,
    WorkspaceStatus,
)
from provisioning.services.changes import change_request_replan, change_request_submit
from provisioning.services.microservices import microservice_register
from provisioning.services.reconcile import aws_holdings, workspace_reconcile_import
from provisioning.services.runs import wait_for_run
from sandbox.celery_worker import CeleryWorker
from tests.factories import approve_as_shown
from tests.integration.conftest import REFERENCE_RESOURCES, make_demo_cluster
from tests.integration.test_celery_runs import broker, worker_env  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
HEARTBEAT_TIMEOUT = 5


@pytest.fixture(scope="module")
def fault_worker(worker_env, tmp_path_factory):  # noqa: F811
    env = {**worker_env, "RUN_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT)}
    running = CeleryWorker(env=env, log=tmp_path_factory.mktemp("faults") / "worker.log")
    yield running
    running.stop()


@pytest.fixture
def demo_cluster(demo_aws):
    return make_demo_cluster(demo_aws)


def approved_apply(developer, team, reviewer, cluster, name: str) -> tuple[ChangeRequest, Run]:
    """Register, plan (through the worker) and approve; returns the queued apply run."""
    change = microservice_register(
        actor=developer,
        team=team,
        name=name,
        namespace="shop",
        service_accounts=[name],
        resources=REFERENCE_RESOURCES,
        clusters=[cluster],
        justification="fault test",
    )
    (plan,) = change_request_submit(actor=developer, change_request=change)
    plan = wait_for_run(plan.pk)
    assert plan.status == RunStatus.SUCCEEDED, plan.error
    change.refresh_from_db()
    assert change.status == ChangeStatus.PLANNED
    approve_as_shown(reviewer, change)
    return change, change.runs.get(kind=RunKind.APPLY, status__in=("queued", "running"))


def wait_until(predicate, *, what: str, timeout: float = 240, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)
    return value


def applying(run_id: int) -> Run:
    """The run once its apply step started and Terraform's launcher pid is recorded."""
    return wait_until(
        lambda: Run.objects.filter(pk=run_id, current_step="apply", pid__isnull=False).first(),
        what="the apply step to start",
    )


def assert_inventory_is_the_sandbox(workspace: Workspace) -> None:
    """Every ARN the sandbox holds for the service is in the inventory, and the other way."""
    workspace.refresh_from_db()
    held = {item["arn"] for item in aws_holdings(parse_workspace_spec(workspace.runs.last().spec))}
    inventory = {
        workspace.role_arn,
        workspace.policy_arn,
        workspace.kms_key_arn,
        *workspace.resource_arns.values(),
    }
    alias_arns = {a for a in held if ":alias/" in a}
    assert held - alias_arns == inventory
    assert [a.split(":", 5)[5] for a in alias_arns] == [workspace.kms_alias]


def test_a_killed_pool_child_leaves_terraform_running_and_the_run_is_adopted(
    fault_worker, developer, team, reviewer, demo_cluster, unique_name, tf_settings
):
    change, run = approved_apply(developer, team, reviewer, demo_cluster, unique_name)
    run = applying(run.pk)
    launcher = run.pid
    fault_worker.kill_pool_child()
    assert Path(f"/proc/{launcher}").exists(), "Terraform died with the worker's pool child"
    # Beat's reaper, as the worker's new pool child runs it once the heartbeat is stale.
    wait_until(
        lambda: (
            tasks.reap_interrupted_runs.delay()
            and Run.objects.get(pk=run.pk).status != RunStatus.RUNNING
        ),
        what="the run to be adopted and finished",
        poll=HEARTBEAT_TIMEOUT,
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, fault_worker.log.read_text()[-3000:])
    assert AuditEvent.objects.filter(action="run.adopted", object_id=str(run.pk)).exists()
    assert "(adopted terraform apply" in run.log and "Apply complete!" in run.log
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPLIED
    workspace = run.workspace
    workspace.refresh_from_db()
    assert workspace.status == WorkspaceStatus.APPLIED
    assert_inventory_is_the_sandbox(workspace)
    assert not Path(run.workdir).exists(), "the adopter left the run directory behind"


def test_a_killed_terraform_fails_the_run_and_reconciliation_and_replan_recover(
    fault_worker, developer, team, reviewer, demo_cluster, unique_name, tf_settings
):
    change, run = approved_apply(developer, team, reviewer, demo_cluster, unique_name)
    run = applying(run.pk)
    wait_until(
        lambda: (
            "module.kms_key.aws_kms_key.this: Creation complete" in Run.objects.get(pk=run.pk).log
        ),
        what="the KMS key to be created",
        poll=0.05,
    )
    (terraform,) = Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()
    os.kill(int(terraform), signal.SIGKILL)
    run = wait_for_run(run.pk)
    assert run.status == RunStatus.FAILED
    assert "killed by SIGKILL" in run.error
    change.refresh_from_db()
    assert change.status == ChangeStatus.FAILED
    assert AuditEvent.objects.filter(
        action="change_request.run_failed", object_id=str(change.pk)
    ).exists()
    workspace = run.workspace
    reconciliation = wait_until(
        lambda: Workspace.objects.get(pk=workspace.pk).reconciliation, what="the reconciliation"
    )
    unmanaged = reconciliation["unmanaged"]
    assert "kms_key" in {item["type"] for item in unmanaged}, reconciliation
    key = next(i for i in unmanaged if i["type"] == "kms_key")
    assert key["address"] == "module.kms_key.aws_kms_key.this"

    ids = [item["id"] for item in unmanaged]
    workspace_reconcile_import(actor=reviewer, workspace=workspace, item_ids=ids)
    workspace.refresh_from_db()
    assert workspace.reconciliation["unmanaged"] == []
    assert AuditEvent.objects.filter(action="workspace.unmanaged_imported").count() == len(
        unmanaged
    )

    (plan,) = change_request_replan(actor=developer, change_request=change)
    assert wait_for_run(plan.pk).status == RunStatus.SUCCEEDED
    # A run is final a moment before its worker moves the change request on.
    change = wait_until(
        lambda: ChangeRequest.objects.filter(pk=change.pk, status=ChangeStatus.PLANNED).first(),
        what="the change request to be planned",
    )
    approve_as_shown(reviewer, change)
    apply = wait_for_run(change.runs.filter(kind=RunKind.APPLY).latest("pk").pk)
    assert apply.status == RunStatus.SUCCEEDED, apply.error
    wait_until(
        lambda: (
            ChangeRequest.objects.filter(pk=change.pk)
            .exclude(status=ChangeStatus.APPLYING)
            .exists()
        ),
        what="the change request to leave applying",
    )
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPLIED
    assert_inventory_is_the_sandbox(workspace)


def test_an_adopted_plan_records_its_plan_file_and_summary(
    fault_worker, developer, team, demo_cluster, unique_name
):
    change = microservice_register(
        actor=developer,
        team=team,
        name=unique_name,
        namespace="shop",
        service_accounts=[unique_name],
        resources=REFERENCE_RESOURCES,
        clusters=[demo_cluster],
        justification="fault test",
    )
    (plan,) = change_request_submit(actor=developer, change_request=change)
    wait_until(
        lambda: Run.objects.filter(pk=plan.pk, current_step="plan", pid__isnull=False).first(),
        what="the plan step to start",
        poll=0.05,
    )
    fault_worker.kill_pool_child()
    wait_until(
        lambda: (
            tasks.reap_interrupted_runs.delay()
            and Run.objects.get(pk=plan.pk).status != RunStatus.RUNNING
        ),
        what="the plan to be adopted and finished",
        poll=HEARTBEAT_TIMEOUT,
    )
    plan.refresh_from_db()
    assert plan.status == RunStatus.SUCCEEDED, plan.error
    assert AuditEvent.objects.filter(action="run.adopted", object_id=str(plan.pk)).exists()
    assert plan.has_changes and len(plan.plan_sha256) == 64 and bytes(plan.plan_file)
    assert "module.irsa.aws_iam_role.this" in plan.plan_summary["add"]
    assert plan.plan_summary["policy_changes"]
    change.refresh_from_db()
    assert change.status == ChangeStatus.PLANNED


def test_a_restarted_worker_adopts_the_run_its_predecessor_left(
    worker_env,  # noqa: F811
    fault_worker,
    developer,
    team,
    reviewer,
    demo_cluster,
    unique_name,
    tf_settings,
    tmp_path,
):
    """The whole worker dies mid-apply (not Terraform); a worker started afterwards on the same
    host adopts the run at start-up (`worker_ready`), without beat."""
    fault_worker.stop()  # this test's worker takes the queue alone
    env = {**worker_env, "RUN_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT)}
    doomed = CeleryWorker(env=env, log=tmp_path / "doomed.log")
    try:
        change, run = approved_apply(developer, team, reviewer, demo_cluster, unique_name)
        run = applying(run.pk)
        doomed.kill_worker_only()
    finally:
        doomed.stop()
    assert Path(f"/proc/{run.pid}").exists(), "Terraform died with its worker"
    successor = CeleryWorker(env=env, log=tmp_path / "successor.log")
    try:
        run = wait_for_run(run.pk, timeout=240)
    finally:
        successor.stop()
    assert run.status == RunStatus.SUCCEEDED, (run.error, (tmp_path / "successor.log").read_text())
    assert AuditEvent.objects.filter(action="run.adopted", object_id=str(run.pk)).exists()
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPLIED
    assert_inventory_is_the_sandbox(run.workspace)


def test_reconciliation_finds_the_services_leftovers_by_tags_and_names_and_deletes_them(
    tf_settings, aws, demo_aws, demo_cluster, unique_name, reviewer
):
    """No Terraform: leftovers made directly in the sandbox, as a dead apply leaves them."""
    from provisioning.services.reconcile import workspace_reconcile_delete
    from tests.factories import MicroserviceFactory, TeamFactory
    from tests.integration.conftest import workspace_spec

    spec = workspace_spec(demo_aws, unique_name, REFERENCE_RESOURCES)
    slug = f"demo--{unique_name}"
    ours = [
        {"TagKey": "ManagedBy", "TagValue": "irsa-portal"},
        {"TagKey": "Cluster", "TagValue": "demo"},
        {"TagKey": "Microservice", "TagValue": unique_name},
    ]
    key = aws("kms").create_key(Tags=ours)["KeyMetadata"]
    aws("kms").create_key(Tags=[{"TagKey": "Microservice", "TagValue": "someone-else"}])
    aws("kms").create_alias(AliasName=f"alias/irsa/{slug}", TargetKeyId=key["KeyId"])
    aws("iam").create_role(RoleName=slug, Path="/irsa/", AssumeRolePolicyDocument="{}")
    aws("dynamodb").create_table(  # untagged: Terraform died before tagging it
        TableName=f"{slug}--orders",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    aws("s3").create_bucket(Bucket=f"{slug}--x-archive")  # untagged, not a spec resource's name

    held = aws_holdings(spec)
    assert {(i["type"], i["id"], i["address"]) for i in held} == {
        ("kms_key", key["KeyId"], "module.kms_key.aws_kms_key.this"),
        ("kms_alias", f"alias/irsa/{slug}", "module.kms_key.aws_kms_alias.this"),
        ("iam_role", slug, "module.irsa.aws_iam_role.this"),
        (
            "dynamodb_table",
            f"{slug}--orders",
            'module.dynamodb_table["orders"].aws_dynamodb_table.this',
        ),
    }

    service = MicroserviceFactory(name=unique_name, team=TeamFactory())
    workspace = Workspace.objects.create(
        microservice=service, cluster=demo_cluster, reconciliation={"unmanaged": held}
    )
    Run.objects.create(
        workspace=workspace,
        kind=RunKind.APPLY,
        status=RunStatus.FAILED,
        spec=spec_data(demo_aws, unique_name),
    )
    workspace_reconcile_delete(
        actor=reviewer, workspace=workspace, item_ids=[i["id"] for i in held]
    )
    assert aws_holdings(spec) == []  # the key is pending deletion, the rest is gone
    assert workspace.reconciliation["unmanaged"] == []
    assert AuditEvent.objects.filter(action="workspace.unmanaged_deleted").count() == 4


def spec_data(demo_aws, name: str) -> dict:
    return {
        "microservice": name,
        "namespace": "shop",
        "service_accounts": [name],
        "resources": REFERENCE_RESOURCES,
        "cluster": {
            "name": "demo",
            "account_id": demo_aws.account_id,
            "region": demo_aws.region,
            "oidc_provider_arn": demo_aws.oidc_provider_arn,
        },
    }
