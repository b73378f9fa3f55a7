"""The apply of a saved plan takes over the plan run's initialised directory and skips `init`;
without it (another host, swept) it initialises a fresh one. Real Terraform and the sandbox, run
in-process: a create and a destroy, each a plan and an apply of the small spec."""

from __future__ import annotations

import shutil

import pytest

from provisioning.models import Run, RunKind, RunStatus, Workspace
from provisioning.services.execution import run_execute
from provisioning.terraform.context import parked_dir, runs_dir
from tests.factories import MicroserviceFactory, TeamFactory
from tests.integration.conftest import make_demo_cluster
from tests.integration.test_celery_runs import spec_for
from tests.sandbox_fixtures import admin_client

pytestmark = pytest.mark.integration

SMALL = [
    {
        "kind": "dynamodb_table",
        "name": "orders",
        "access": "read",
        "settings": {"partition_key": {"name": "order_id", "type": "S"}},
    }
]
INIT_SKIPPED = "init skipped"


def _run(workspace: Workspace, kind: str, spec: dict, **fields) -> Run:
    run = Run.objects.create(workspace=workspace, kind=kind, spec=spec, **fields)
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_an_apply_reuses_its_plans_directory_and_inits_when_it_is_gone(
    transactional_db, tf_settings, sandbox, demo_aws, unique_name
):
    # transactional_db: the run log's background flushes use a connection of their own, which
    # must see the run rows.
    tf_settings.VERIFY_AFTER_APPLY = False
    cluster = make_demo_cluster(demo_aws)
    service = MicroserviceFactory(name=unique_name, team=TeamFactory())
    workspace = Workspace.objects.create(microservice=service, cluster=cluster)
    spec = spec_for(demo_aws, workspace, SMALL)

    plan = _run(workspace, RunKind.PLAN, spec)
    parked = parked_dir(plan.pk)
    assert (parked / "tfplan").is_file() and (parked / ".terraform").is_dir()

    apply = _run(workspace, RunKind.APPLY, spec, plan_run=plan)
    assert INIT_SKIPPED in apply.log and "$ terraform init" not in apply.log
    assert "$ terraform apply" in apply.log
    assert not parked.exists()  # taken over, then removed with the apply's directory
    assert not [p for p in runs_dir().iterdir() if p.name.startswith(f"run{apply.pk}-")]
    table = f"demo--{unique_name}--orders"
    assert admin_client(sandbox, "dynamodb").describe_table(TableName=table)["Table"]
    workspace.refresh_from_db()
    assert workspace.role_arn.endswith(f"/demo--{unique_name}")

    # The destroy's plan parks its directory too; gone (as on another host), the apply inits.
    destroy_plan = _run(workspace, RunKind.PLAN, spec, destroy_plan=True)
    assert parked_dir(destroy_plan.pk).is_dir()
    shutil.rmtree(parked_dir(destroy_plan.pk))
    destroy = _run(workspace, RunKind.DESTROY, spec, plan_run=destroy_plan)
    assert INIT_SKIPPED not in destroy.log and "$ terraform init" in destroy.log
    assert table not in admin_client(sandbox, "dynamodb").list_tables()["TableNames"]
    workspace.refresh_from_db()
    assert workspace.status == "destroyed" and not workspace.role_arn
