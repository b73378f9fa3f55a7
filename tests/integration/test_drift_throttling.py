"""Drift checks under IAM throttling, against a sandbox that answers ``Throttling``.

One workspace applied for real; its drift check meets ``Throttling: Rate exceeded`` on every IAM
call (``POST /_sandbox/faults``): the run ends cancelled with a message that says so, the
workspace stays applied, and the account gets no new drift check until the back-off has passed;
then the workspace is checked again.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import Run, RunKind, RunStatus, Workspace, WorkspaceStatus
from provisioning.services import runs
from provisioning.services.execution import run_execute
from sandbox.faults import inject_throttling
from tests.factories import MicroserviceFactory, TeamFactory
from tests.integration.conftest import make_demo_cluster, workspace_spec

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
TABLE_ONLY = [{"kind": "dynamodb_table", "name": "orders", "access": "read"}]


def execute(workspace: Workspace, kind: str, spec: dict, plan_run: Run | None = None) -> Run:
    """A run executed here, as a worker would (no broker: nothing is dispatched elsewhere)."""
    run = Run.objects.create(workspace=workspace, kind=kind, spec=spec, plan_run=plan_run)
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def test_a_throttled_drift_check_backs_off_instead_of_failing(
    tf_settings, demo_aws, sandbox, unique_name
):
    tf_settings.VERIFY_AFTER_APPLY = False
    default_retries = tf_settings.DRIFT_AWS_MAX_RETRIES
    tf_settings.DRIFT_THROTTLE_BACKOFF = 600
    tf_settings.DRIFT_AWS_MAX_RETRIES = 1
    cluster = make_demo_cluster(demo_aws)
    service = MicroserviceFactory(name=unique_name, team=TeamFactory())
    workspace = Workspace.objects.create(microservice=service, cluster=cluster)
    spec = workspace_spec(demo_aws, unique_name, TABLE_ONLY)
    data = {
        "microservice": spec.microservice,
        "namespace": spec.namespace,
        "service_accounts": list(spec.service_accounts),
        "resources": TABLE_ONLY,
        "cluster": {
            "name": "demo",
            "account_id": demo_aws.account_id,
            "region": demo_aws.region,
            "oidc_provider_arn": demo_aws.oidc_provider_arn,
        },
    }
    plan = execute(workspace, RunKind.PLAN, data)
    assert plan.status == RunStatus.SUCCEEDED, plan.error
    apply = execute(workspace, RunKind.APPLY, data, plan_run=plan)
    assert apply.status == RunStatus.SUCCEEDED, apply.error
    # Applied two intervals ago and never checked: overdue whatever its slot.
    Run.objects.filter(pk=apply.pk).update(
        finished_at=timezone.now() - timedelta(seconds=2 * tf_settings.DRIFT_CHECK_INTERVAL + 1)
    )

    inject_throttling(sandbox.endpoint_url, service="iam", count=10_000)
    try:
        (drift_id,) = runs.workspaces_check_drift()
        run_execute(run_id=drift_id)
    finally:
        inject_throttling(sandbox.endpoint_url, service="iam", count=0)
    drift = Run.objects.get(pk=drift_id)
    assert drift.status == RunStatus.CANCELLED, (drift.error, drift.log[-1500:])
    assert drift.error.startswith("AWS throttled this drift check (Throttling)")
    assert "it is not a failure" in drift.error and demo_aws.account_id in drift.error
    assert "Rate exceeded" in drift.log
    workspace.refresh_from_db()
    assert workspace.status == WorkspaceStatus.APPLIED

    assert runs.workspaces_check_drift() == [], "the throttled account backs off"
    tf_settings.DRIFT_THROTTLE_BACKOFF = 0
    # The check after the back-off is an ordinary one, with the configured retries again (one
    # attempt only was for the throttled check; it also left a transient connection error with
    # no retry, which once failed this test).
    tf_settings.DRIFT_AWS_MAX_RETRIES = default_retries
    (again,) = runs.workspaces_check_drift()  # the back-off over, the workspace is still due
    assert Run.objects.get(pk=again).kind == RunKind.DRIFT
    run_execute(run_id=again)
    checked = Run.objects.get(pk=again)
    assert checked.status == RunStatus.SUCCEEDED and not checked.has_changes, checked.error
    # Never applied, so only its hash is kept, not the plan file.
    assert len(checked.plan_sha256) == 64 and checked.plan_file is None
    workspace.refresh_from_db()
    assert workspace.status == WorkspaceStatus.APPLIED
