"""The review page: the summary (classification, grant diff, findings, matrix) first, then each
workspace's plan and policies diffed against what is live, then the approve/reject form."""

from __future__ import annotations

from html import unescape

import pytest
from django.test import override_settings
from django.urls import reverse

from provisioning.models import ChangeRequest, Review
from tests.factories import RESOURCES
from tests.test_review import (
    KEY_ARN,
    make_applied,
    planned_change,
    planned_create,
    widened_catalog,  # noqa: F401 - a fixture
)


def page(client, change) -> str:
    response = client.get(reverse("change-request-detail", args=[change.pk]))
    assert response.status_code == 200
    return unescape(response.content.decode())


def test_a_create_shows_the_summary_before_the_policies_and_the_form_last(
    client, reviewer, developer, team, cluster
):
    change = planned_create(developer, team, cluster)
    client.force_login(reviewer)
    html = page(client, change)
    summary = html.index("Security review")
    policies = html.index("Policies against what is live")
    form = html.index("Approve these plans")
    assert summary < policies < form
    assert "New trust subject" in html
    assert "+ added" in html and "system:serviceaccount:shop:orders" in html
    assert "The lint found nothing" in html and "every check as expected" in html
    # Never "(known after apply)" for a policy the portal generated: the key is a marked
    # placeholder until the apply creates it.
    assert "placeholder: the key is created by this apply" in html
    assert '<span class="diff-add">+   "Version": "2012-10-17"</span>' in html


def test_a_change_diffs_the_policies_against_the_live_ones(
    client, reviewer, developer, team, cluster
):
    create = planned_create(developer, team, cluster)
    make_applied(create)
    change = planned_change(developer, create, RESOURCES[:1])
    client.force_login(reviewer)
    html = page(client, change)
    assert "No new access" in html and "- removed" in html
    assert "s3:GetObject on arn:aws:s3:::" in html
    assert KEY_ARN in html and "placeholder" not in html.split("Policies against")[1][:400]
    assert '<span class="diff-remove">-' in html and "s3:GetObject" in html


@pytest.mark.usefixtures("widened_catalog")
def test_high_findings_are_listed_and_approval_is_refused_on_the_form(
    client, reviewer, developer, team, cluster
):
    change = planned_create(developer, team, cluster)
    [plan] = change.runs.filter(kind="plan")
    client.force_login(reviewer)
    html = page(client, change)
    assert "blocked: high findings" in html and "IRSA005" in html
    assert "High findings block approval" in html
    response = client.post(
        reverse("change-request-approve", args=[change.pk]),
        {"plans": f"{plan.pk}:{'a' * 64}", "comment": "ok"},
    )
    assert response.status_code == 409
    body = unescape(response.content.decode())
    assert "Not approved: " in body and "IRSA005 at identity_policy" in body
    assert "dynamodb:DeleteTable" in body
    assert ChangeRequest.objects.get(pk=change.pk).status == "planned"
    assert not Review.objects.exists()


@override_settings(AUTO_APPROVE_NO_NEW_ACCESS=True)
def test_an_automatic_approval_says_so(client, developer, team, cluster):
    create = planned_create(developer, team, cluster)
    make_applied(create)
    change = planned_change(developer, create, RESOURCES[:1])
    client.force_login(developer)
    html = page(client, change)
    assert "automatic</span> by the portal" in html and "AUTO_APPROVE_NO_NEW_ACCESS" in html


def test_the_review_page_validates_ownership(client, outsider, developer, team, cluster):
    change = planned_create(developer, team, cluster)
    client.force_login(outsider)
    assert client.get(reverse("change-request-detail", args=[change.pk])).status_code == 404
