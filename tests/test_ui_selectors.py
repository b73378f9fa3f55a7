"""The read models behind the inventory, the dashboard and the audit pages (and helper API)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning import models as m
from provisioning import selectors
from provisioning.services.audit import audit_record
from tests.factories import ClusterFactory, MicroserviceFactory

pytestmark = pytest.mark.django_db

ROLE = "arn:aws:iam::123456789012:role/irsa-demo-orders"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1111"


def _applied(microservice, cluster, *, status=m.WorkspaceStatus.APPLIED, when=None):
    ws = m.Workspace.objects.create(
        microservice=microservice, cluster=cluster, status=status, role_arn=ROLE, kms_key_arn=KEY
    )
    m.Run.objects.create(
        workspace=ws,
        kind=m.RunKind.APPLY,
        status=m.RunStatus.SUCCEEDED,
        outputs={"kms_key_arn": KEY, "role_arn": ROLE},
        finished_at=when or timezone.now(),
    )
    return ws


def test_inventory_rows_show_roles_and_keys_of_visible_services(
    developer, outsider, reviewer, microservice, cluster
):
    ws = _applied(microservice, cluster)
    roles = selectors.inventory_rows(
        workspaces=selectors.workspace_inventory_for_user(user=developer), kind="role"
    )
    assert [(r["microservice"], r["arn"], r["team"], r["status"]) for r in roles] == [
        ("orders", ROLE, "payments", "applied")
    ]
    assert roles[0]["last_applied_at"] is not None
    keys = selectors.inventory_rows(
        workspaces=selectors.workspace_inventory_for_user(user=reviewer), kind="key"
    )
    assert keys[0]["arn"] == KEY and keys[0]["rotation"]
    assert not selectors.workspace_inventory_for_user(user=outsider).exists()
    assert ws.pk == keys[0]["workspace_id"]


def test_destroyed_key_shows_its_pending_deletion_date(developer, microservice, cluster):
    ws = _applied(microservice, cluster, when=timezone.now() - timedelta(days=2))
    destroyed_at = timezone.now()
    m.Run.objects.create(
        workspace=ws, kind=m.RunKind.DESTROY, status=m.RunStatus.SUCCEEDED, finished_at=destroyed_at
    )
    m.Workspace.objects.filter(pk=ws.pk).update(
        status=m.WorkspaceStatus.DESTROYED, role_arn="", kms_key_arn=""
    )
    [key] = selectors.inventory_rows(
        workspaces=selectors.workspace_inventory_for_user(user=developer), kind="key"
    )
    assert key["arn"] == KEY
    assert key["status"] == "pending_deletion"
    assert key["pending_deletion_on"] == (destroyed_at + timedelta(days=7)).date()


def test_inventory_filters(developer, microservice, cluster):
    other = ClusterFactory(name="prod-eu")
    _applied(microservice, cluster)
    _applied(microservice, other, status=m.WorkspaceStatus.DRIFTED)
    by = selectors.InventoryFilters
    inv = selectors.workspace_inventory_for_user
    assert inv(user=developer, filters=by(cluster="prod-eu")).count() == 1
    assert inv(user=developer, filters=by(drifted=True)).get().cluster == other
    assert inv(user=developer, filters=by(team="search")).count() == 0
    assert inv(user=developer, filters=by(search="irsa-demo")).count() == 2


def test_microservice_state(developer, team, cluster):
    new = MicroserviceFactory(name="fresh", team=team)
    live = MicroserviceFactory(name="live", team=team)
    _applied(live, cluster)
    drifted = MicroserviceFactory(name="drifty", team=team)
    _applied(drifted, cluster, status=m.WorkspaceStatus.DRIFTED)
    rejected = MicroserviceFactory(name="nope", team=team)
    m.ChangeRequest.objects.create(
        microservice=rejected,
        kind=m.ChangeKind.CREATE,
        status=m.ChangeStatus.REJECTED,
        spec={},
        justification="x",
        created_by=developer,
    )
    states = dict(selectors.microservice_rows_for_user(user=developer).values_list("name", "state"))
    assert states == {"fresh": "new", "live": "live", "drifty": "drifted", "nope": "rejected"}
    only = selectors.MicroserviceFilters(state="drifted")
    assert [s.name for s in selectors.microservice_rows_for_user(user=developer, filters=only)] == [
        drifted.name
    ]
    assert new.name in states


def test_dashboard_sections(developer, reviewer, teammate, microservice, cluster):
    _applied(microservice, cluster, status=m.WorkspaceStatus.DRIFTED)
    change = m.ChangeRequest.objects.create(
        microservice=microservice,
        kind=m.ChangeKind.CHANGE,
        status=m.ChangeStatus.PLANNED,
        spec={},
        justification="x",
        created_by=teammate,
    )
    board = selectors.dashboard_for_user(user=developer)
    assert [s.name for s in board["my_services"]["rows"]] == ["orders"]
    assert board["drifted_workspaces"]["count"] == 1
    assert board["review_queue"] is None
    queue = selectors.dashboard_for_user(user=reviewer)["review_queue"]
    assert [row["change"] for row in queue] == [change]
    assert queue[0]["age"] >= timedelta(0)


def test_audit_visibility(developer, outsider, reviewer, microservice, cluster):
    ws = _applied(microservice, cluster)
    audit_record(actor=developer, action="microservice.registered", obj=microservice)
    audit_record(actor=None, action="workspace.verified", obj=ws)
    audit_record(actor=None, action="cluster.node_role_audit_requested", obj=cluster)
    mine = selectors.audit_event_list_for_user(user=developer)
    assert sorted(e.action for e in mine) == ["microservice.registered", "workspace.verified"]
    assert not selectors.audit_event_list_for_user(user=outsider).exists()
    assert selectors.audit_event_list_for_user(user=reviewer).count() == 3
    only = selectors.AuditFilters(action="workspace.")
    timeline = selectors.audit_event_list_for_microservice(microservice=microservice, filters=only)
    assert [e.action for e in timeline] == ["workspace.verified"]
