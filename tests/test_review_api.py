"""The review over the REST API: a change request's detail carries, per workspace, the policies,
grant diff, findings and matrix before approval; high findings make approval a 409 with the
findings; POST /api/dry-run/ validates and analyses a spec without saving anything."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    Microservice,
    NamespaceOwnership,
    Review,
    Run,
    Workspace,
)
from tests.factories import RESOURCES
from tests.refusals import assert_token_refused, token
from tests.test_review import (
    KEY_ARN,
    make_applied,
    planned_change,
    planned_create,
    widened_catalog,  # noqa: F401 - a fixture
)

DRY_RUN = {
    "microservice": "orders",
    "namespace": "shop",
    "service_accounts": ["orders"],
    "resources": RESOURCES,
    "clusters": ["demo"],
}


def post(client, url, data=None):
    return client.post(url, data or {}, content_type="application/json")


def detail(client, change):
    return client.get(reverse("api-change-request-detail", args=[change.pk])).json()


def test_a_create_shows_its_policies_before_approval(client, reviewer, developer, team, cluster):
    change = planned_create(developer, team, cluster)
    client.force_login(reviewer)
    body = detail(client, change)
    assert body["status"] == "planned" and body["reviews"] == []
    [workspace] = body["review"]["workspaces"]
    policies = workspace["analysis"]["policies"]
    assert policies["kms_key"]["placeholder"] is True
    actions = {a for s in policies["identity_policy"]["Statement"] for a in s["Action"]}
    assert "dynamodb:PutItem" in actions and "s3:GetObject" in actions
    assert policies["trust_policy"]["Statement"][0]["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert policies["key_policy"]["Statement"]
    assert workspace["analysis"]["findings"] == []
    assert workspace["analysis"]["matrix"]["verdict"] == "ok"
    assert body["review"]["summary"]["classification"] == "new_trust_subject"
    assert body["review"]["blocking_findings"] == []


def test_a_change_shows_the_real_key_and_the_grant_diff(client, teammate, developer, team, cluster):
    create = planned_create(developer, team, cluster)
    make_applied(create)
    change = planned_change(developer, create, RESOURCES[:1])
    client.force_login(teammate)
    [workspace] = detail(client, change)["review"]["workspaces"]
    analysis = workspace["analysis"]
    assert analysis["policies"]["kms_key"]["arn"] == KEY_ARN
    assert analysis["policies"]["kms_key"]["placeholder"] is False
    assert analysis["diff"]["added"]["identity"] == []
    assert {g["action"] for g in analysis["diff"]["removed"]["identity"]} >= {"s3:GetObject"}


def test_the_list_leaves_the_review_out(client, reviewer, developer, team, cluster):
    planned_create(developer, team, cluster)
    client.force_login(reviewer)
    [found] = client.get(reverse("api-change-requests")).json()["results"]
    assert "review" not in found and found["status"] == "planned"


def test_the_review_validates_ownership(client, outsider, developer, team, cluster):
    change = planned_create(developer, team, cluster)
    client.force_login(outsider)
    response = client.get(reverse("api-change-request-detail", args=[change.pk]))
    assert response.status_code == 404


def test_the_review_refuses_a_dead_token(
    client, developer, team, cluster, expired_token, revoked_token
):
    change = planned_create(developer, team, cluster)
    url = reverse("api-change-request-detail", args=[change.pk])
    for key in (expired_token, revoked_token):  # Alice's own request, her tokens dead
        assert_token_refused(client.get(url, **token(key)))
        approve = reverse("api-change-request-approve", args=[change.pk])
        assert_token_refused(
            client.post(approve, {}, content_type="application/json", **token(key))
        )
    change.refresh_from_db()
    assert change.status == "planned"


@pytest.mark.usefixtures("widened_catalog")
def test_high_findings_make_approval_409_with_the_findings(
    client, reviewer, developer, team, cluster
):
    change = planned_create(developer, team, cluster)
    [plan] = change.runs.filter(kind="plan")
    client.force_login(reviewer)
    assert detail(client, change)["review"]["summary"]["blocking"] is True
    response = post(
        client,
        reverse("api-change-request-approve", args=[change.pk]),
        {"plan_hashes": {str(plan.pk): "a" * 64}},
    )
    assert response.status_code == 409
    body = response.json()
    assert "high finding" in body["detail"]
    assert any(
        f["rule"] == "IRSA005" and "dynamodb:DeleteTable" in f["message"] for f in body["findings"]
    )
    assert ChangeRequest.objects.get(pk=change.pk).status == "planned"
    assert not Review.objects.exists()


@override_settings(AUTO_APPROVE_NO_NEW_ACCESS=True)
def test_an_automatic_review_has_no_reviewer(client, developer, team, cluster):
    create = planned_create(developer, team, cluster)
    make_applied(create)
    change = planned_change(developer, create, RESOURCES[:1])
    client.force_login(developer)
    [review] = detail(client, change)["reviews"]
    assert review["reviewer"] is None and review["automatic"] is True
    assert review["decision"] == "approve" and "AUTO_APPROVE_NO_NEW_ACCESS" in review["comment"]


class TestDryRun:
    url = reverse("api-dry-run")

    def test_it_returns_the_analysis_per_cluster_and_saves_nothing(
        self, client, developer, cluster
    ):
        client.force_login(developer)
        before = AuditEvent.objects.count()
        response = post(client, self.url, DRY_RUN)
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["team"] == "payments"
        [demo] = body["clusters"]
        assert demo["cluster"] == "demo" and demo["policies"]["kms_key"]["placeholder"] is True
        assert demo["findings"] == [] and demo["matrix"]["verdict"] == "ok"
        assert body["summary"]["classification"] == "new_trust_subject"
        assert not Microservice.objects.exists() and not ChangeRequest.objects.exists()
        assert not Workspace.objects.exists() and not Run.objects.exists()
        assert AuditEvent.objects.count() == before

    def test_a_change_of_a_live_service_is_diffed(self, client, developer, team, cluster):
        make_applied(planned_create(developer, team, cluster))
        client.force_login(developer)
        body = post(client, self.url, {**DRY_RUN, "resources": RESOURCES[:1]}).json()
        [demo] = body["clusters"]
        assert demo["policies"]["kms_key"]["arn"] == KEY_ARN
        assert body["summary"]["classification"] == "no_new_access"

    def test_invalid_specs_are_400_with_field_errors(self, client, developer, cluster):
        client.force_login(developer)
        bad = {**DRY_RUN, "resources": [{"kind": "s3_bucket", "name": "X", "access": "admin"}]}
        response = post(client, self.url, bad)
        assert response.status_code == 400
        assert set(response.json()["errors"]) >= {"resources[0].name", "resources[0].access"}
        assert post(client, self.url, {**DRY_RUN, "clusters": ["nope"]}).status_code == 400
        unknown = post(client, self.url, {**DRY_RUN, "dry": True}).json()["errors"]
        assert "Unknown field 'dry'" in unknown["dry"][0]

    def test_an_outsider_cannot_dry_run_into_another_teams_namespace(
        self, client, outsider, team, cluster
    ):
        NamespaceOwnership.objects.create(cluster=cluster, namespace="shop", team=team)
        client.force_login(outsider)
        response = post(client, self.url, {**DRY_RUN, "microservice": "catalog"})
        assert response.status_code == 400
        assert "belongs to team payments" in response.json()["errors"]["namespace"][0]
        system = {**DRY_RUN, "microservice": "catalog", "namespace": "kube-system"}
        errors = post(client, self.url, {**system, "service_accounts": ["aws-node"]}).json()
        assert "system namespace" in errors["errors"]["namespace"][0]

    def test_it_validates_ownership(self, client, outsider, developer, team, cluster):
        """Olga can neither name Alice's team nor dry-run Alice's service as her own."""
        planned_create(developer, team, cluster)
        client.force_login(outsider)
        response = post(client, self.url, {**DRY_RUN, "team": "payments"})
        assert response.status_code == 400
        assert "only for your teams (search)" in response.json()["errors"]["team"][0]
        response = post(client, self.url, DRY_RUN)
        assert response.status_code == 400
        assert "belongs to team payments" in response.json()["errors"]["microservice"][0]

    def test_anonymous_and_dead_tokens_get_401(self, client, expired_token, revoked_token):
        assert post(client, self.url, DRY_RUN).status_code == 401
        for key in (expired_token, revoked_token):
            response = client.post(self.url, DRY_RUN, content_type="application/json", **token(key))
            assert_token_refused(response)
