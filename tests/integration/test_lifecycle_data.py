"""Issue 10 with real Terraform and the sandbox, one applied workspace in a prod cluster:

- point-in-time recovery: the table left to the prod default has it on, the one that opts out
  has it off, as DescribeContinuousBackups reads them after the apply;
- a *change* (not a decommission) that removes a table holding an item: its plan lists the item,
  the reviewer's page shows the "deletes data" banner with the approve button disabled, the API
  approval is a 409 until the requester typed the service's name, then the apply deletes it.

Runs are executed in-process, as the worker would (four Terraform runs, ~2 min)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from django.contrib.auth.models import Group
from django.urls import reverse

from provisioning.models import AuditEvent, ChangeRequest, ChangeStatus, Run, RunKind, RunStatus
from provisioning.permissions import SECURITY_GROUP
from provisioning.services.changes import (
    change_request_approve,
    change_request_create,
    change_request_submit,
)
from provisioning.services.execution import run_execute
from provisioning.services.microservices import microservice_register
from tests.factories import TeamFactory, UserFactory
from tests.integration.conftest import make_demo_cluster
from tests.sandbox_fixtures import admin_client

pytestmark = pytest.mark.integration

KEPT = {
    "kind": "dynamodb_table",
    "name": "orders",
    "access": "read_write",
    "settings": {"partition_key": {"name": "order_id", "type": "S"}},
}
# Opts out of the prod defaults, so it can be removed (no deletion protection) and shows PITR off.
REMOVED = {
    "kind": "dynamodb_table",
    "name": "scratch",
    "access": "read_write",
    "settings": {"deletion_protection": False, "point_in_time_recovery": False},
}


def run_queued(change: ChangeRequest) -> list[Run]:
    """What the worker does with the change request's queued runs."""
    runs = list(change.runs.filter(status=RunStatus.QUEUED).order_by("pk"))
    for run in runs:
        run_execute(run_id=run.pk)
        run.refresh_from_db()
        assert run.status == RunStatus.SUCCEEDED, run.error or run.log[-3000:]
    change.refresh_from_db()
    return runs


def test_pitr_in_prod_and_a_change_that_deletes_a_table_needs_the_typed_confirmation(
    tf_settings, sandbox, demo_aws, unique_name, client
):
    cluster = make_demo_cluster(demo_aws, environment="prod")
    team = TeamFactory()
    alice, rita = UserFactory(), UserFactory()
    team.members.add(alice)
    rita.groups.add(Group.objects.get_or_create(name=SECURITY_GROUP)[0])
    create = microservice_register(
        actor=alice,
        team=team,
        name=unique_name,
        namespace="shop",
        service_accounts=[unique_name],
        resources=[KEPT, REMOVED],
        clusters=[cluster],
        justification="orders and a scratch table",
    )
    change_request_submit(actor=alice, change_request=create)
    [plan] = run_queued(create)
    assert create.status == ChangeStatus.PLANNED
    assert "data_at_risk" not in plan.plan_summary  # a create deletes nothing
    change_request_approve(
        actor=rita, change_request=create, shown_plan_hashes={str(plan.pk): plan.plan_sha256}
    )
    run_queued(create)
    assert create.status == ChangeStatus.APPLIED

    dynamodb = admin_client(sandbox, "dynamodb")
    kept, scratch = f"demo--{unique_name}--orders", f"demo--{unique_name}--scratch"

    def pitr(table: str) -> str:
        backups = dynamodb.describe_continuous_backups(TableName=table)
        return backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
            "PointInTimeRecoveryStatus"
        ]

    assert pitr(kept) == "ENABLED"  # the prod default
    assert pitr(scratch) == "DISABLED"  # asked for
    assert dynamodb.describe_table(TableName=kept)["Table"]["DeletionProtectionEnabled"]

    dynamodb.put_item(TableName=scratch, Item={"pk": {"S": "1"}, "note": {"S": "keep me?"}})
    change = change_request_create(
        actor=alice,
        microservice=create.microservice,
        kind="change",
        spec={**create.spec, "resources": [KEPT]},
        justification="scratch is no longer needed",
    )
    change_request_submit(actor=alice, change_request=change)
    [plan] = run_queued(change)
    assert change.status == ChangeStatus.PLANNED
    [entry] = plan.plan_summary["data_at_risk"]
    assert entry["name"] == scratch and entry["items"] == 1 and entry["action"] == "delete"

    client.force_login(rita)
    page = client.get(reverse("change-request-detail", args=[change.pk])).content.decode()
    assert "Deletes data" in page and scratch in page and "1 item," in page
    assert 'id="approve-blocked"' in page
    approve_url = reverse("v1:api-change-request-approve", args=[change.pk])
    body = {"plan_hashes": {str(plan.pk): plan.plan_sha256}}
    refused = client.post(approve_url, body, content_type="application/json")
    assert refused.status_code == 409 and "confirm" in refused.json()["detail"]

    client.force_login(alice)
    confirm_url = reverse("v1:api-change-request-confirm-data-loss", args=[change.pk])
    confirmed = client.post(
        confirm_url, {"confirm_name": unique_name}, content_type="application/json"
    )
    assert confirmed.status_code == 200 and confirmed.json()["data_loss"]["confirmed"]
    event = AuditEvent.objects.get(action="change_request.data_loss_confirmed")
    assert event.data["data_at_risk"][0]["entries"][0]["items"] == 1

    client.force_login(rita)
    approved = client.post(approve_url, body, content_type="application/json")
    assert approved.status_code == 200, approved.content
    [apply] = run_queued(change)
    assert apply.kind == RunKind.APPLY and change.status == ChangeStatus.APPLIED
    with pytest.raises(ClientError):
        dynamodb.describe_table(TableName=scratch)
    assert pitr(kept) == "ENABLED"
