"""Verification and node role audit in the pages and the API, with the personas: Alice
(developer) owns the service, Olga is an outsider, Rita reviews for security. Workspaces are rows
with a stored verification; the worker's side is tests/integration/test_verification.py."""

from __future__ import annotations

import pytest
from django.urls import reverse

from provisioning import tasks
from provisioning.models import AuditEvent, NodeRoleStatus, VerificationStatus, Workspace
from tests.factories import MicroserviceFactory
from tests.refusals import assert_token_refused, token

FAILED = {
    "mode": "live",
    "probes": [
        {
            "id": "orders/neighbour/dynamodb:GetItem/demo-stock",
            "sa": "orders",
            "category": "neighbour",
            "action": "dynamodb:GetItem",
            "resource": "arn:aws:dynamodb:us-east-1:123456789012:table/demo-stock",
            "expected": "denied",
            "actual": "allowed",
            "ok": False,
            "detail": "",
        }
    ],
    "failed": ["orders/neighbour/dynamodb:GetItem/demo-stock"],
    "duration_s": 3.2,
}


@pytest.fixture
def workspace(team, cluster):
    service = MicroserviceFactory(name="orders", team=team, service_accounts=["orders"])
    return Workspace.objects.create(
        microservice=service,
        cluster=cluster,
        status="applied",
        role_arn="arn:aws:iam::123456789012:role/irsa/demo-orders",
        verification_status=VerificationStatus.FAILED,
        verification=FAILED,
    )


@pytest.fixture
def queued(monkeypatch):
    sent: list[tuple] = []
    monkeypatch.setattr(tasks.verify_workspace, "delay", lambda *a: sent.append(a))
    monkeypatch.setattr(tasks.audit_node_role, "delay", lambda *a: sent.append(a))
    return sent


def test_service_page_and_list_say_which_probe_failed(client, developer, workspace):
    client.force_login(developer)
    page = client.get(reverse("microservice-detail", args=["orders"])).content.decode()
    assert "verification failed: orders/neighbour/dynamodb:GetItem/demo-stock" in page
    assert "Verify again" in page
    home = client.get(reverse("home")).content.decode()
    assert "verification failed: orders/neighbour/dynamodb:GetItem/demo-stock" in home


def test_api_workspace_carries_the_verification(client, developer, workspace):
    client.force_login(developer)
    body = client.get(reverse("api-microservice-detail", args=["orders"])).json()
    ws = body["workspaces"][0]
    assert ws["verification_status"] == "failed"
    assert ws["verification"]["failed"] == FAILED["failed"]


def test_owner_re_verifies_through_the_api(
    client, developer, workspace, queued, django_capture_on_commit_callbacks
):
    client.force_login(developer)
    url = reverse("api-workspace-verify", args=["orders", "demo"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 202
    assert queued == [(workspace.pk, developer.pk)]
    assert AuditEvent.objects.filter(action="workspace.verification_requested").count() == 1


def test_reviewer_re_verifies_from_the_page(
    client, reviewer, workspace, queued, django_capture_on_commit_callbacks
):
    client.force_login(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("workspace-verify", args=["orders", "demo"]))
    assert response.status_code == 302 and queued == [(workspace.pk, reviewer.pk)]


def test_it_validates_ownership(client, outsider, workspace, queued):
    client.force_login(outsider)
    assert client.post(reverse("api-workspace-verify", args=["orders", "demo"])).status_code == 404
    assert client.post(reverse("workspace-verify", args=["orders", "demo"])).status_code == 404
    assert queued == []


def test_dead_tokens_are_refused(client, workspace, queued, expired_token, revoked_token):
    for key in (expired_token, revoked_token):  # Alice owns the service; her tokens are dead
        url = reverse("api-workspace-verify", args=["orders", "demo"])
        assert_token_refused(client.post(url, **token(key)))
        assert_token_refused(client.get(reverse("api-cluster-detail", args=["demo"]), **token(key)))
    assert queued == []


def test_a_workspace_not_applied_is_a_conflict(client, developer, workspace, queued):
    Workspace.objects.filter(pk=workspace.pk).update(status="new", role_arn="")
    client.force_login(developer)
    response = client.post(reverse("api-workspace-verify", args=["orders", "demo"]))
    assert response.status_code == 409 and "not applied" in response.json()["detail"]
    assert queued == []


def test_cluster_detail_in_the_api_and_the_page(client, outsider, cluster):
    cluster.node_role_arn = "arn:aws:iam::123456789012:role/demo-eks-node"
    cluster.node_role_status = NodeRoleStatus.FLAGGED
    cluster.node_role_audit = {
        "flagged": [{"policy": "arn:aws:iam::aws:policy/AmazonS3FullAccess", "reason": "extra"}]
    }
    cluster.save()
    client.force_login(outsider)
    body = client.get(reverse("api-cluster-detail", args=["demo"])).json()
    assert body["node_role_status"] == "flagged"
    assert body["node_role_audit"]["flagged"][0]["policy"].endswith("AmazonS3FullAccess")
    listed = client.get(reverse("api-clusters")).json()["results"][0]
    assert listed["node_role_status"] == "flagged" and "node_role_audit" not in listed
    page = client.get(reverse("cluster-detail", args=["demo"])).content.decode()
    assert "AmazonS3FullAccess" in page
    assert "demo" in client.get(reverse("cluster-list")).content.decode()


def test_only_staff_and_reviewers_start_a_node_role_audit(
    client, developer, reviewer, cluster, queued, django_capture_on_commit_callbacks
):
    client.force_login(developer)
    assert client.post(reverse("cluster-audit", args=["demo"])).status_code == 403
    client.force_login(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("cluster-audit", args=["demo"])).status_code == 302
    assert queued == [(cluster.pk,)]


def test_my_tasks_time_limits_can_be_enqueued():
    """apply_async refuses a soft limit above the hard one (the settings' soft default is 3300)."""
    from provisioning.notifications.tasks import send_email

    for task in (send_email, tasks.verify_workspace, tasks.audit_node_role, tasks.audit_node_roles):
        assert task.soft_time_limit is not None and task.soft_time_limit <= task.time_limit


def test_failed_verification_mails_the_requester_and_security(
    developer, reviewer, workspace, monkeypatch, mailoutbox, django_capture_on_commit_callbacks
):
    from provisioning.notifications import email
    from provisioning.notifications.tasks import send_email

    developer.email, reviewer.email = "alice@example.com", "rita@example.com"
    developer.save()
    reviewer.save()
    workspace.microservice.created_by = developer
    workspace.microservice.save()
    monkeypatch.setattr(send_email, "delay", lambda *a: send_email.apply(args=a).get())
    with django_capture_on_commit_callbacks(execute=True):
        email.notify_verification_failed(workspace=workspace, failing=FAILED["probes"])
    (mail,) = mailoutbox
    assert sorted(mail.to) == ["alice@example.com", "rita@example.com"]
    assert FAILED["failed"][0] in mail.body and "denied -> allowed" in mail.body


def test_a_verification_that_cannot_run_is_recorded_and_audited(workspace):
    from provisioning.verification.services import workspace_verify

    result = workspace_verify(workspace=workspace)  # no successful apply to read the spec from
    workspace.refresh_from_db()
    assert workspace.verification_status == VerificationStatus.ERROR
    assert "no successful apply" in result["error"]
    event = AuditEvent.objects.get(action="workspace.verification_error")
    assert event.object_id == str(workspace.pk) and event.actor_name == "system"


def test_the_apply_hook_does_nothing_when_verification_is_off(settings, workspace):
    from provisioning.models import Run
    from provisioning.verification.services import verification_after_apply

    settings.VERIFY_AFTER_APPLY = False
    run = Run.objects.create(workspace=workspace, kind="apply", status="running")
    verification_after_apply(run=run)
    workspace.refresh_from_db()
    assert workspace.verification_status == VerificationStatus.FAILED  # untouched
    assert not AuditEvent.objects.filter(object_type="provisioning.workspace").exists()
