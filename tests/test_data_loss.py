"""The typed confirmation comes after the counts: a change request whose plans delete (or replace)
a table or bucket waits, once planned, for the owning team to type the service's name under the
counts; reviewers cannot approve before (409, the page's approve button disabled with the
reason); the confirmation is audited and binds to the plans (a re-plan asks again). A plan that
deletes no data needs none. Alice (developer) owns orders, Tom is on her team, Olga is an
outsider, Rita reviews. The plans are stored runs here; tests/integration/test_lifecycle_data.py
makes them with real Terraform against the sandbox."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    ChangeStatus,
    Review,
    Run,
    RunKind,
    RunStatus,
)
from provisioning.selectors import change_request_review
from provisioning.services.changes import (
    change_request_create,
    change_request_run_finished,
    change_request_submit,
)
from provisioning.services.runs import run_claim, run_finish
from tests import test_ui
from tests.factories import RESOURCES
from tests.test_api import post
from tests.test_review import make_applied, planned_create
from tests.test_ui import PLAN_SUMMARY, plan

change = test_ui.change  # fixtures
applied = test_ui.applied

pytestmark = pytest.mark.django_db

AT_RISK = [
    {
        "address": 'module.dynamodb_table["orders"].aws_dynamodb_table.this',
        "kind": "DynamoDB table",
        "action": "delete",
        "name": "demo--orders--orders",
        "items": 42,
        "bytes": 2048,
        "deletion_protection": False,
    },
    {
        "address": 'module.s3_bucket["invoices"].aws_s3_bucket.this',
        "kind": "S3 bucket",
        "action": "replace",
        "name": "demo--orders--invoices",
        "objects": 7,
        "bytes": 700,
        "truncated": False,
    },
]


def planned_with(change, cluster, *, at_risk, sha="a" * 64) -> Run:
    run = plan(change, cluster, sha=sha)
    Run.objects.filter(pk=run.pk).update(plan_summary={**PLAN_SUMMARY, "data_at_risk": at_risk})
    ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.PLANNED)
    change.refresh_from_db()
    run.refresh_from_db()
    return run


@pytest.fixture
def deleting(change, cluster):
    """Alice's request, planned, whose plan deletes a table and replaces a bucket."""
    return planned_with(change, cluster, at_risk=AT_RISK)


def confirm(client, run: Run, name: str):
    url = reverse("v1:api-change-request-confirm-data-loss", args=[run.change_request_id])
    return post(client, url, {"confirm_name": name})


def approve(client, run: Run):
    url = reverse("v1:api-change-request-approve", args=[run.change_request_id])
    return post(client, url, {"plan_hashes": {str(run.pk): run.plan_sha256}})


def detail(client, run: Run) -> dict:
    url = reverse("v1:api-change-request-detail", args=[run.change_request_id])
    return client.get(url).json()


class TestApi:
    def test_reviewers_cannot_approve_before_the_confirmation(self, client, reviewer, deleting):
        client.force_login(reviewer)
        response = approve(client, deleting)
        assert response.status_code == 409
        assert "waits for the requester to confirm" in response.json()["detail"]
        assert "'orders'" in response.json()["detail"]
        assert ChangeRequest.objects.get(pk=deleting.change_request_id).status == "planned"
        assert not Review.objects.exists()
        loss = detail(client, deleting)["data_loss"]
        assert loss["required"] and loss["waiting"] and loss["pending"]
        assert not loss["confirmed"] and loss["at_risk"][0]["entries"] == AT_RISK

    def test_a_wrong_name_is_a_400_and_nothing_is_confirmed(self, client, developer, deleting):
        client.force_login(developer)
        response = confirm(client, deleting, "order")
        assert response.status_code == 400
        assert "Type the service's name 'orders'" in response.json()["errors"]["confirm_name"][0]
        assert not AuditEvent.objects.filter(action="change_request.data_loss_confirmed").exists()

    def test_the_confirmation_is_audited_and_unblocks_the_approval(
        self, client, developer, reviewer, deleting
    ):
        client.force_login(developer)
        response = confirm(client, deleting, "orders")
        assert response.status_code == 200
        loss = response.json()["data_loss"]
        assert loss["confirmed"] and loss["confirmed_by"] == "alice" and not loss["waiting"]
        event = AuditEvent.objects.get(action="change_request.data_loss_confirmed")
        assert event.actor == developer
        assert event.data["data_at_risk"][0]["entries"] == AT_RISK  # the counts confirmed
        assert event.data["plan_hashes"] == {str(deleting.pk): "a" * 64}
        client.force_login(reviewer)
        assert approve(client, deleting).status_code == 200
        change = ChangeRequest.objects.get(pk=deleting.change_request_id)
        assert change.status in (ChangeStatus.APPLYING, ChangeStatus.APPLIED)

    def test_a_re_plan_asks_again(self, client, developer, reviewer, cluster, deleting):
        client.force_login(developer)
        assert confirm(client, deleting, "orders").status_code == 200
        change = ChangeRequest.objects.get(pk=deleting.change_request_id)
        newer = planned_with(change, cluster, at_risk=AT_RISK, sha="b" * 64)
        client.force_login(reviewer)
        assert detail(client, newer)["data_loss"]["waiting"]
        assert approve(client, newer).status_code == 409

    def test_it_validates_ownership(self, client, outsider, teammate, reviewer, deleting):
        client.force_login(outsider)
        assert confirm(client, deleting, "orders").status_code == 404
        client.force_login(reviewer)  # sees every request, is not on the team
        response = confirm(client, deleting, "orders")
        assert response.status_code == 403
        assert "owning team" in response.json()["detail"]
        client.force_login(teammate)
        assert confirm(client, deleting, "orders").status_code == 200

    def test_a_plan_without_data_at_risk_needs_no_confirmation(
        self, client, developer, reviewer, change, cluster
    ):
        run = planned_with(change, cluster, at_risk=[])
        client.force_login(developer)
        response = confirm(client, run, "orders")
        assert response.status_code == 409
        assert "nothing to confirm" in response.json()["detail"]
        client.force_login(reviewer)
        assert approve(client, run).status_code == 200

    def test_only_a_planned_request_is_confirmed(self, client, developer, change, cluster):
        run = planned_with(change, cluster, at_risk=AT_RISK)
        ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.SUBMITTED)
        client.force_login(developer)
        assert confirm(client, run, "orders").status_code == 409

    def test_a_decommission_is_requested_without_the_name(self, client, developer, applied):
        client.force_login(developer)
        body = {"microservice": "orders", "kind": "decommission", "justification": "gone"}
        response = post(client, reverse("api-change-requests"), body)
        assert response.status_code == 201
        old = {**body, "confirm_name": "orders"}  # the request-time field is gone
        ChangeRequest.objects.filter(kind="decommission").delete()
        response = post(client, reverse("api-change-requests"), old)
        assert response.status_code == 400
        assert "confirm_name" in response.json()["errors"]


class TestPages:
    def url(self, run: Run) -> str:
        return reverse("change-request-detail", args=[run.change_request_id])

    def test_the_requester_sees_the_counts_and_the_form(self, client, developer, deleting):
        client.force_login(developer)
        page = client.get(self.url(deleting)).content.decode()
        assert "Deletes data" in page and "42 items" in page and "7 object versions" in page
        assert "replaced: a new, empty one takes its place" in page
        assert "Waiting for the requester" in page and 'id="confirm-data-loss"' in page

    def test_the_reviewer_sees_the_banner_and_a_disabled_approve(self, client, reviewer, deleting):
        client.force_login(reviewer)
        page = client.get(self.url(deleting)).content.decode()
        assert "Deletes data" in page and 'id="confirm-data-loss"' not in page
        assert 'id="approve-blocked"' in page
        assert "disabled" in page.split("Approve these plans")[0].rsplit("<button", 1)[1]
        response = client.post(
            reverse("change-request-approve", args=[deleting.change_request_id]),
            {"plans": f"{deleting.pk}:{deleting.plan_sha256}"},
            follow=True,
        )
        assert "waits for the requester to confirm" in response.content.decode()
        assert not Review.objects.exists()

    def test_typing_the_name_on_the_page_confirms(self, client, developer, reviewer, deleting):
        client.force_login(developer)
        url = reverse("change-request-confirm-data-loss", args=[deleting.change_request_id])
        wrong = client.post(url, {"confirm_name": "nope"})
        assert wrong.status_code == 400
        assert "Type the service&#x27;s name &#x27;orders&#x27;" in wrong.content.decode()
        assert client.post(url, {"confirm_name": "orders"}).status_code == 302
        page = client.get(self.url(deleting)).content.decode()
        assert "Confirmed by alice" in page
        client.force_login(reviewer)
        page = client.get(self.url(deleting)).content.decode()
        assert 'id="approve-blocked"' not in page

    def test_the_dashboard_lists_it_as_waiting_on_the_team(self, client, teammate, deleting):
        client.force_login(teammate)
        board = client.get(reverse("home")).context["board"]
        [row] = board["waiting_on_me"]["rows"]
        assert row.pk == deleting.change_request_id and row.confirm_data_loss
        assert "confirm the data loss" in client.get(reverse("home")).content.decode()
        change = ChangeRequest.objects.get(pk=deleting.change_request_id)
        change.data_loss_confirmed_at = change.created_at
        change.save(update_fields=["data_loss_confirmed_at"])
        assert client.get(reverse("home")).context["board"]["waiting_on_me"]["rows"] == []

    def test_the_decommission_page_asks_only_for_a_justification(self, client, developer, applied):
        client.force_login(developer)
        url = reverse("microservice-decommission", args=["orders"])
        page = client.get(url).content.decode()
        assert "Deletes data" in page and "confirm_name" not in page
        response = client.post(url, {"justification": "gone"})
        change = ChangeRequest.objects.get(kind="decommission")
        assert response["Location"] == reverse("change-request-detail", args=[change.pk])


@override_settings(AUTO_APPROVE_NO_NEW_ACCESS=True)
def test_a_removal_that_deletes_data_is_never_approved_automatically(developer, team, cluster):
    """The same removal is approved automatically without data at risk (tests/test_review.py);
    with a table deleted it waits for the confirmation and a human."""
    create = planned_create(developer, team, cluster)
    make_applied(create)
    proposal = change_request_create(
        actor=developer,
        microservice=create.microservice,
        kind="change",
        spec={**create.spec, "resources": RESOURCES[:1]},
        justification="the bucket goes",
    )
    change_request_submit(actor=developer, change_request=proposal)
    [run] = proposal.runs.filter(kind=RunKind.PLAN, status=RunStatus.QUEUED)
    assert run_claim(run_id=run.pk)
    run_finish(
        run_id=run.pk,
        status=RunStatus.SUCCEEDED,
        exit_code=2,
        plan_sha256="b" * 64,
        plan_summary={
            "add": [],
            "change": [],
            "replace": [],
            "destroy": [],
            "data_at_risk": AT_RISK,
        },
        has_changes=True,
    )
    change_request_run_finished(change_request_id=proposal.pk)
    proposal.refresh_from_db()
    assert proposal.status == ChangeStatus.PLANNED
    assert not Review.objects.filter(change_request=proposal).exists()
    assert change_request_review(change_request=proposal)["summary"]["classification"] == (
        "no_new_access"
    )
