"""A failed change request: the short error with the resource address, a link to the full log,
re-plan and discard. Alice (developer) owns orders; Olga (outsider) may not touch it."""

import pytest
from django.urls import reverse

from provisioning.models import AuditEvent, ChangeRequest, ChangeStatus, Run, RunKind, RunStatus
from tests.test_api import post
from tests.test_ui import applied, change, plan  # noqa: F401 (fixtures)
from tests.unit.test_diagnostics import LOG

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(change, cluster):  # noqa: F811
    planned = plan(change, cluster)
    Run.objects.create(
        workspace=planned.workspace,
        change_request=change,
        kind=RunKind.APPLY,
        status=RunStatus.FAILED,
        plan_run=planned,
        spec=planned.spec,
        log=LOG,
        error="terraform apply failed (exit 1)",
    )
    ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.FAILED)
    change.refresh_from_db()
    return change


def test_the_page_shows_the_short_error_and_offers_replan_and_discard(client, developer, failed):
    client.force_login(developer)
    page = client.get(reverse("change-request-detail", args=[failed.pk])).content.decode()
    assert "Why it failed" in page and "BucketNotEmpty" in page
    assert "module.s3_bucket[&quot;invoices&quot;].aws_s3_bucket.this" in page
    assert "Full log" in page and "Plan again" in page and "Discard" in page


def test_discard_cancels_the_failed_request_and_is_audited(client, developer, failed):
    client.force_login(developer)
    response = client.post(reverse("change-request-discard", args=[failed.pk]))
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == ChangeStatus.CANCELLED
    assert AuditEvent.objects.filter(action="change_request.discarded").count() == 1


def test_discard_over_the_api(client, developer, failed):
    client.force_login(developer)
    response = post(client, reverse("api-change-request-discard", args=[failed.pk]))
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = post(client, reverse("api-change-request-discard", args=[failed.pk]))
    assert again.status_code == 409


def test_only_a_failed_request_can_be_discarded(client, developer, change):  # noqa: F811
    client.force_login(developer)
    response = post(client, reverse("api-change-request-discard", args=[change.pk]))
    assert response.status_code == 409
    change.refresh_from_db()
    assert change.status == ChangeStatus.DRAFT


def test_it_validates_ownership(client, outsider, teammate, failed):
    client.force_login(outsider)
    assert post(client, reverse("api-change-request-discard", args=[failed.pk])).status_code == 404
    client.force_login(teammate)
    assert post(client, reverse("api-change-request-discard", args=[failed.pk])).status_code == 200
