"""The REST API with the same personas as the pages: Alice (developer), Tom (teammate), Olga
(outsider), Rita (security reviewer). Runs are created as rows; nothing reaches Celery."""

import pytest
from django.urls import reverse

from provisioning.models import (
    ChangeRequest,
    ChangeStatus,
    Microservice,
    Review,
    Run,
    RunKind,
    RunStatus,
)
from provisioning.services.tokens import api_token_create
from tests import test_ui
from tests.factories import RESOURCES, MicroserviceFactory, UserFactory

# The pages' fixtures, shared rather than copied: a draft, a planned and an applied request.
change = test_ui.change
planned = test_ui.planned
applied = test_ui.applied
plan = test_ui.plan

REGISTER = {
    "name": "orders",
    "team": "payments",
    "namespace": "shop",
    "service_accounts": ["orders"],
    "resources": RESOURCES,
    "clusters": ["demo"],
    "justification": "stores orders",
}
SPEC = {
    "namespace": "shop",
    "service_accounts": ["orders"],
    "resources": [*RESOURCES, {"kind": "s3_bucket", "name": "exports", "access": "read_write"}],
    "clusters": ["demo"],
}


def post(client, url, data=None):
    return client.post(url, data or {}, content_type="application/json")


class TestAuthentication:
    def test_anonymous_gets_401(self, client, db):
        response = client.get(reverse("api-microservices"))
        assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
        assert post(client, reverse("api-microservices"), REGISTER).status_code == 401
        assert not Microservice.objects.exists()

    def test_a_token_authenticates(self, client, developer, change):
        _, key = api_token_create(actor=developer, name="ci")
        response = client.get(reverse("api-microservices"), HTTP_AUTHORIZATION=f"Token {key}")
        assert response.status_code == 200
        assert [m["name"] for m in response.json()["results"]] == ["orders"]

    def test_a_wrong_token_gets_401(self, client, db):
        response = client.get(reverse("api-clusters"), HTTP_AUTHORIZATION="Token nope")
        assert response.status_code == 401


class TestClusters:
    def test_it_lists_clusters(self, client, outsider, cluster):
        client.force_login(outsider)
        [demo] = client.get(reverse("api-clusters")).json()["results"]
        assert demo["name"] == "demo" and demo["account_id"] == "123456789012"

    def test_it_validates_ownership(self, client, outsider, cluster):
        # Clusters are shared infrastructure; only anonymous callers are refused.
        client.logout()
        assert client.get(reverse("api-clusters")).status_code == 401


class TestMicroservices:
    url = reverse("api-microservices")

    def test_it_registers_and_returns_the_draft(self, client, developer, cluster):
        client.force_login(developer)
        response = post(client, self.url, REGISTER)
        assert response.status_code == 201
        body = response.json()
        assert body["microservice"] == "orders" and body["status"] == "draft"
        assert body["kind"] == "create" and body["created_by"] == "alice"
        assert ChangeRequest.objects.get().pk == body["id"]

    def test_spec_errors_are_400_with_paths(self, client, developer, cluster):
        client.force_login(developer)
        bad = [*RESOURCES, {"kind": "sqs", "name": "q", "access": "read"}]
        response = post(client, self.url, {**REGISTER, "resources": bad})
        assert response.status_code == 400
        assert "Unknown resource kind 'sqs'" in response.json()["errors"]["resources[2].kind"][0]
        assert not Microservice.objects.exists()

    def test_shape_errors_use_the_same_body(self, client, developer, cluster):
        client.force_login(developer)
        response = post(
            client,
            self.url,
            {**REGISTER, "resources": ["orders"], "clusters": ["mars"], "colour": "red"},
        )
        assert response.status_code == 400
        errors = response.json()["errors"]
        assert set(errors) == {"resources[0]", "clusters", "colour"}
        assert "Unknown cluster(s): mars" in errors["clusters"][0]
        assert not Microservice.objects.exists()

    def test_a_misspelt_resource_key_is_refused(self, client, developer, cluster):
        client.force_login(developer)
        resources = [{"kind": "s3_bucket", "name": "b", "access": "read", "setting": {}}]
        response = post(client, self.url, {**REGISTER, "resources": resources})
        assert "Unknown field 'setting'" in response.json()["errors"]["resources[0].setting"][0]

    def test_it_validates_ownership(self, client, outsider, cluster, team):
        client.force_login(outsider)
        response = post(client, self.url, REGISTER)  # Alice's team, not Olga's
        assert response.status_code == 400
        assert "only for your teams (search)" in response.json()["errors"]["team"][0]
        assert not Microservice.objects.exists()

    def test_list_shows_only_visible_services(self, client, outsider, change):
        MicroserviceFactory(name="search-api", team=outsider.teams.get())
        client.force_login(outsider)
        names = [m["name"] for m in client.get(self.url).json()["results"]]
        assert names == ["search-api"]


class TestMicroserviceDetail:
    url = reverse("api-microservice-detail", args=["orders"])

    def test_it_shows_live_resources_and_workspaces(self, client, teammate, applied):
        client.force_login(teammate)
        body = client.get(self.url).json()
        assert body["team"] == "payments"
        [workspace] = body["workspaces"]
        assert workspace["cluster"] == "demo" and workspace["status"] == "applied"
        assert workspace["role_arn"].endswith(":role/irsa/demo--orders")
        assert {r["name"] for r in body["resources"]} == {"orders", "invoices"}

    def test_it_validates_ownership(self, client, outsider, applied):
        client.force_login(outsider)
        assert client.get(self.url).status_code == 404


class TestChangeRequests:
    url = reverse("api-change-requests")

    def test_it_creates_a_change(self, client, developer, applied):
        client.force_login(developer)
        body = {"microservice": "orders", "kind": "change", "spec": SPEC, "justification": "x"}
        response = post(client, self.url, body)
        assert response.status_code == 201
        change = ChangeRequest.objects.get(pk=response.json()["id"])
        assert change.kind == "change" and change.spec == SPEC

    def test_it_creates_a_decommission(self, client, developer, applied):
        client.force_login(developer)
        body = {"microservice": "orders", "kind": "decommission", "justification": "gone"}
        response = post(client, self.url, body)
        assert response.status_code == 201
        assert response.json()["spec"]["clusters"] == []

    def test_an_open_request_is_409(self, client, developer, change):
        client.force_login(developer)
        body = {"microservice": "orders", "kind": "change", "spec": SPEC, "justification": "x"}
        response = post(client, self.url, body)
        assert response.status_code == 409
        assert f"open change request #{change.pk}" in response.json()["detail"]
        assert ChangeRequest.objects.count() == 1

    def test_bad_spec_is_400_and_nothing_is_written(self, client, developer, applied):
        client.force_login(developer)
        spec = {**SPEC, "namespace": "Shop"}
        body = {"microservice": "orders", "kind": "change", "spec": spec, "justification": ""}
        response = post(client, self.url, body)
        assert response.status_code == 400
        assert response.json()["errors"] == {
            "justification": ["Say why the service needs this change."]
        }
        response = post(client, self.url, {**body, "justification": "x"})
        assert "namespace" in response.json()["errors"]
        missing = post(client, self.url, {**body, "spec": {"namespace": "shop"}})
        assert set(missing.json()["errors"]) == {
            "spec.service_accounts",
            "spec.resources",
            "spec.clusters",
        }
        assert ChangeRequest.objects.count() == 1

    def test_it_validates_ownership(self, client, outsider, applied):
        client.force_login(outsider)
        body = {"microservice": "orders", "kind": "decommission", "justification": "mine now"}
        assert post(client, self.url, body).status_code == 404
        assert ChangeRequest.objects.count() == 1
        assert client.get(self.url).json()["results"] == []

    def test_a_reviewer_outside_the_team_gets_403(self, client, reviewer, applied):
        client.force_login(reviewer)
        body = {"microservice": "orders", "kind": "decommission", "justification": "x"}
        response = post(client, self.url, body)
        assert response.status_code == 403
        assert "Only the owning team" in response.json()["detail"]
        assert ChangeRequest.objects.count() == 1

    def test_list_filters_by_status(self, client, reviewer, planned):
        client.force_login(reviewer)
        [found] = client.get(self.url, {"status": "planned"}).json()["results"]
        assert found["id"] == planned.change_request_id
        assert found["runs"][0]["plan_sha256"] == "a" * 64 and "log" not in found["runs"][0]
        assert client.get(self.url, {"status": "draft"}).json()["results"] == []
        bad = client.get(self.url, {"status": "done"})
        assert bad.status_code == 400 and "Unknown status" in bad.json()["errors"]["status"][0]


class TestChangeRequestDetail:
    def test_it_shows_the_request(self, client, teammate, planned):
        client.force_login(teammate)
        url = reverse("api-change-request-detail", args=[planned.change_request_id])
        body = client.get(url).json()
        assert body["status"] == "planned" and body["runs"][0]["cluster"] == "demo"

    def test_it_validates_ownership(self, client, outsider, planned):
        client.force_login(outsider)
        url = reverse("api-change-request-detail", args=[planned.change_request_id])
        assert client.get(url).status_code == 404


class TestSubmit:
    def url(self, change):
        return reverse("api-change-request-submit", args=[change.pk])

    def test_it_queues_plans(
        self,
        client,
        developer,
        change,
        django_capture_on_commit_callbacks,
    ):
        client.force_login(developer)
        with django_capture_on_commit_callbacks() as callbacks:
            response = post(client, self.url(change))
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "submitted"
        assert [(r["kind"], r["status"]) for r in body["runs"]] == [("plan", "queued")]
        assert len(callbacks) == 1

    def test_a_second_submit_is_409(self, client, developer, change):
        client.force_login(developer)
        post(client, self.url(change))
        response = post(client, self.url(change))
        assert response.status_code == 409 and "cannot become" in response.json()["detail"]
        assert Run.objects.count() == 1

    def test_it_validates_ownership(self, client, outsider, change):
        client.force_login(outsider)
        assert post(client, self.url(change)).status_code == 404
        change.refresh_from_db()
        assert change.status == ChangeStatus.DRAFT and not Run.objects.exists()


class TestApprove:
    def url(self, planned):
        return reverse("api-change-request-approve", args=[planned.change_request_id])

    def test_a_reviewer_approves(
        self,
        client,
        reviewer,
        planned,
        django_capture_on_commit_callbacks,
    ):
        client.force_login(reviewer)
        with django_capture_on_commit_callbacks():
            response = post(client, self.url(planned), {"plan_hashes": {str(planned.pk): "a" * 64}})
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "applying" and body["reviews"][0]["decision"] == "approve"
        assert Run.objects.get(kind=RunKind.APPLY).plan_run == planned

    def test_changed_plans_are_409(self, client, reviewer, planned):
        client.force_login(reviewer)
        response = post(client, self.url(planned), {"plan_hashes": {str(planned.pk): "b"}})
        assert response.status_code == 409
        assert not Review.objects.exists()

    def test_approval_without_the_plan_hashes_is_400(self, client, reviewer, planned):
        client.force_login(reviewer)
        response = post(client, self.url(planned), {"comment": "fine"})
        assert response.status_code == 400
        assert "Send the plan hashes you reviewed" in response.json()["errors"]["plan_hashes"][0]
        assert ChangeRequest.objects.get().status == ChangeStatus.PLANNED
        assert not Review.objects.exists()

    def test_the_losing_approval_is_409_with_the_current_state(
        self, client, reviewer, planned, django_capture_on_commit_callbacks
    ):
        """Two reviewers approve the same plans; the second finds it no longer planned."""
        other = UserFactory(username="sam")
        other.groups.add(*reviewer.groups.all())
        hashes = {"plan_hashes": {str(planned.pk): "a" * 64}}
        client.force_login(reviewer)
        with django_capture_on_commit_callbacks():
            assert post(client, self.url(planned), hashes).status_code == 200
        client.force_login(other)
        response = post(client, self.url(planned), hashes)
        assert response.status_code == 409
        assert "is Applying; it cannot become Approved" in response.json()["detail"]
        assert Review.objects.count() == 1

    def test_a_developer_cannot_approve(self, client, developer, planned):
        client.force_login(developer)
        response = post(client, self.url(planned))
        assert response.status_code == 403
        assert "security reviewer" in response.json()["detail"]
        assert not Review.objects.exists()

    def test_a_reviewer_cannot_approve_their_own(
        self,
        client,
        reviewer,
        team,
        planned,
    ):
        team.members.add(reviewer)
        ChangeRequest.objects.filter(pk=planned.change_request_id).update(created_by=reviewer)
        client.force_login(reviewer)
        assert post(client, self.url(planned)).status_code == 403
        assert ChangeRequest.objects.get().status == ChangeStatus.PLANNED
        assert not Review.objects.exists()

    def test_it_validates_ownership(self, client, outsider, planned):
        client.force_login(outsider)
        assert post(client, self.url(planned)).status_code == 404
        assert not Review.objects.exists()


class TestReject:
    def url(self, planned):
        return reverse("api-change-request-reject", args=[planned.change_request_id])

    def test_a_comment_is_required(self, client, reviewer, planned):
        client.force_login(reviewer)
        response = post(client, self.url(planned))
        assert response.status_code == 400
        assert response.json() == {"errors": {"comment": ["Say what has to change for approval."]}}
        assert not Review.objects.exists()

    def test_a_reviewer_rejects(self, client, reviewer, planned):
        client.force_login(reviewer)
        response = post(client, self.url(planned), {"comment": "scope it down"})
        assert response.status_code == 200 and response.json()["status"] == "rejected"

    def test_it_validates_ownership(self, client, outsider, planned):
        client.force_login(outsider)
        assert post(client, self.url(planned), {"comment": "x"}).status_code == 404
        assert ChangeRequest.objects.get().status == ChangeStatus.PLANNED


class TestCancel:
    def url(self, change):
        return reverse("api-change-request-cancel", args=[change.pk])

    def test_the_team_cancels(self, client, teammate, change):
        client.force_login(teammate)
        response = post(client, self.url(change))
        assert response.status_code == 200 and response.json()["status"] == "cancelled"

    def test_a_cancelled_request_cannot_be_cancelled_again(
        self,
        client,
        developer,
        change,
    ):
        client.force_login(developer)
        post(client, self.url(change))
        assert post(client, self.url(change)).status_code == 409

    def test_it_validates_ownership(self, client, outsider, change):
        client.force_login(outsider)
        assert post(client, self.url(change)).status_code == 404
        change.refresh_from_db()
        assert change.status == ChangeStatus.DRAFT


class TestRuns:
    def test_it_shows_the_run_with_its_log(self, client, developer, change, cluster):
        run = plan(change, cluster, status=RunStatus.RUNNING)
        Run.objects.filter(pk=run.pk).update(current_step="plan")
        client.force_login(developer)
        body = client.get(reverse("api-run-detail", args=[run.pk])).json()
        assert body["status"] == "running" and body["current_step"] == "plan"
        assert body["log"] == "Terraform will perform the following actions"
        assert body["microservice"] == "orders" and body["change_request"] == change.pk

    def test_it_validates_ownership(self, client, outsider, planned):
        client.force_login(outsider)
        assert client.get(reverse("api-run-detail", args=[planned.pk])).status_code == 404


@pytest.mark.parametrize("path", ["/api/schema/"])
def test_the_schema_is_served(client, developer, path):
    client.force_login(developer)
    response = client.get(path)
    assert response.status_code == 200
    # each operation once, under the versioned prefix (the /api/ paths answer the same)
    assert b"/api/v1/change-requests/{id}/approve/" in response.content
