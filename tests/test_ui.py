"""The pages: Alice (developer) registers and changes her team's service, Tom is on her team, Olga
(outsider) sees none of it, Rita (security reviewer) approves or rejects planned requests.

No Terraform and no Celery here: plan runs are created directly in the state a test needs, and
runs that views enqueue are asserted as rows, with their broker dispatch captured, not executed.
"""

from html import unescape

import pytest
from django.urls import reverse

from provisioning.forms import resource_initial
from provisioning.models import (
    ChangeRequest,
    ChangeStatus,
    Microservice,
    Resource,
    Review,
    Run,
    RunKind,
    RunStatus,
    Workspace,
    WorkspaceStatus,
)
from provisioning.specs import workspace_spec_data
from tests.factories import RESOURCES, ClusterFactory, MicroserviceFactory, register_orders

ROLE_ARN = "arn:aws:iam::123456789012:role/irsa/demo--orders"
PLAN_SUMMARY = {
    "add": ["module.irsa.aws_iam_role.this", "module.kms_key.aws_kms_key.this"],
    "change": [],
    "replace": [],
    "destroy": [],
    "policy_changes": [
        {
            "address": "module.irsa.aws_iam_role.this",
            "actions": ["create"],
            "before": None,
            "after": {"Version": "2012-10-17", "Statement": [{"Sid": "IrsaServiceAccounts"}]},
            "after_known": True,
        }
    ],
}


def text(response) -> str:
    return unescape(response.content.decode())


@pytest.fixture
def change(developer, team, cluster):
    """Alice's draft ``create`` request for orders in the demo cluster."""
    return register_orders(developer, team, cluster)


def plan(change, cluster, *, sha="a" * 64, status=RunStatus.SUCCEEDED) -> Run:
    workspace, _ = Workspace.objects.get_or_create(
        microservice=change.microservice, cluster=cluster
    )
    return Run.objects.create(
        workspace=workspace,
        change_request=change,
        kind=RunKind.PLAN,
        status=status,
        spec=workspace_spec_data(
            microservice=change.microservice.name,
            namespace=change.spec["namespace"],
            service_accounts=change.spec["service_accounts"],
            resources=change.spec["resources"],
            cluster=cluster,
            name_scheme=2,
        ),
        plan_sha256=sha if status == RunStatus.SUCCEEDED else "",
        plan_summary=PLAN_SUMMARY if status == RunStatus.SUCCEEDED else {},
        has_changes=True,
        log="Terraform will perform the following actions",
        exit_code=2 if status == RunStatus.SUCCEEDED else None,
    )


@pytest.fixture
def planned(change, cluster):
    """The request after its plan succeeded: awaiting review."""
    run = plan(change, cluster)
    ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.PLANNED)
    change.refresh_from_db()
    return run


def register_post(**overrides) -> dict:
    data = {
        "name": "orders",
        "team": "payments",
        "namespace": "shop",
        "service_accounts": "orders, orders-worker",
        "clusters": ["demo"],
        "justification": "stores orders",
        "description": "",
        "resources-TOTAL_FORMS": "2",
        "resources-INITIAL_FORMS": "0",
        "resources-MIN_NUM_FORMS": "0",
        "resources-MAX_NUM_FORMS": "20",
        "resources-0-kind": "dynamodb_table",
        "resources-0-name": "orders",
        "resources-0-access": "read_write",
        "resources-0-partition_key_name": "order_id",
        "resources-0-partition_key_type": "S",
        "resources-0-sort_key_type": "S",
        "resources-0-billing_mode": "PAY_PER_REQUEST",
        "resources-0-versioning": "on",
        "resources-1-kind": "s3_bucket",
        "resources-1-name": "invoices",
        "resources-1-access": "read",
        "resources-1-partition_key_name": "pk",
        "resources-1-partition_key_type": "S",
        "resources-1-sort_key_type": "S",
        "resources-1-billing_mode": "PAY_PER_REQUEST",
    }
    data.update(overrides)
    return data


class TestRegister:
    url = reverse("microservice-register")

    def test_it_requires_login(self, client, db):
        response = client.get(self.url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
        client.post(self.url, register_post())
        assert not Microservice.objects.exists()

    def test_it_offers_only_the_users_teams(self, client, developer, outsider, cluster):
        client.force_login(developer)
        form = client.get(self.url).context["editor"].form
        assert [t.name for t in form.fields["team"].queryset] == ["payments"]

    def test_it_validates_ownership(self, client, developer, outsider, cluster):
        client.force_login(outsider)
        response = client.post(self.url, register_post(team="payments"))
        assert response.status_code == 200
        assert "team" in response.context["editor"].form.errors
        assert not Microservice.objects.exists()

    def test_it_registers_and_redirects_to_the_draft(self, client, developer, cluster):
        client.force_login(developer)
        response = client.post(self.url, register_post())
        change = ChangeRequest.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("change-request-detail", args=[change.pk])
        assert change.status == ChangeStatus.DRAFT and change.created_by == developer
        assert change.spec["service_accounts"] == ["orders", "orders-worker"]
        table, bucket = change.spec["resources"]
        assert table["settings"]["partition_key"] == {"name": "order_id", "type": "S"}
        assert bucket == {
            "kind": "s3_bucket",
            "name": "invoices",
            "access": "read",
            "settings": {"versioning": False},
        }

    def test_spec_errors_land_on_the_resource_row(self, client, developer, cluster):
        client.force_login(developer)
        response = client.post(self.url, register_post(**{"resources-1-name": "x" * 60}))
        assert response.status_code == 200
        formset = response.context["editor"].formset
        assert not formset.forms[0].errors
        assert "S3 bucket" in " ".join(formset.forms[1].errors["name"])
        assert not Microservice.objects.exists() and not ChangeRequest.objects.exists()

    def test_a_taken_name_is_an_error_on_the_name_field(self, client, developer, change):
        client.force_login(developer)
        response = client.post(self.url, register_post())
        assert "already exists" in response.context["editor"].form.errors["name"][0]
        assert Microservice.objects.count() == 1

    def test_the_services_message_is_shown_for_a_missing_justification(
        self, client, developer, cluster
    ):
        client.force_login(developer)
        response = client.post(self.url, register_post(justification=" "))
        errors = response.context["editor"].form.errors
        assert errors["justification"] == ["Say why the service needs this access."]
        assert not Microservice.objects.exists()

    def test_a_provisioned_table_needs_capacities(self, client, developer, cluster):
        client.force_login(developer)
        response = client.post(
            self.url, register_post(**{"resources-0-billing_mode": "PROVISIONED"})
        )
        row = response.context["editor"].formset.forms[0]
        assert "read_capacity" in row.errors and "write_capacity" in row.errors
        assert not Microservice.objects.exists()

    def test_add_row_keeps_the_input_and_saves_nothing(self, client, developer, cluster):
        client.force_login(developer)
        response = client.post(self.url, register_post(add_row="1"))
        editor = response.context["editor"]
        assert len(editor.formset.forms) == 3
        assert editor.formset.forms[1].initial["name"] == "invoices"
        assert not editor.form.is_bound and editor.form.initial["name"] == "orders"
        assert not Microservice.objects.exists()


class TestChangeRequestPage:
    def url(self, change):
        return reverse("change-request-detail", args=[change.pk])

    def test_it_requires_login(self, client, change):
        response = client.get(self.url(change))
        assert response.status_code == 302 and response["Location"].startswith("/login/")

    def test_it_validates_ownership(self, client, outsider, planned):
        client.force_login(outsider)
        assert client.get(self.url(planned.change_request)).status_code == 404

    def test_draft_shows_the_policy_preview_and_submit(self, client, developer, change):
        client.force_login(developer)
        page = text(client.get(self.url(change)))
        assert ROLE_ARN in page and "sts:AssumeRoleWithWebIdentity" in page
        assert "ServiceRoleUse" in page  # the key policy
        assert reverse("change-request-submit", args=[change.pk]) in page
        assert reverse("change-request-approve", args=[change.pk]) not in page

    def test_planned_shows_summary_policy_changes_and_review_form(self, client, reviewer, planned):
        client.force_login(reviewer)
        response = client.get(self.url(planned.change_request))
        page = text(response)
        assert "module.kms_key.aws_kms_key.this" in page
        assert '"Sid": "IrsaServiceAccounts"' in page  # the plan's policy change, after
        assert f'value="{planned.pk}:{"a" * 64}"' in page
        assert reverse("change-request-approve", args=[planned.change_request_id]) in page
        assert 'hx-trigger="every 2s"' not in page  # the run has finished

    def test_an_active_run_polls_its_log(self, client, developer, change, cluster):
        run = plan(change, cluster, status=RunStatus.RUNNING)
        Run.objects.filter(pk=run.pk).update(current_step="plan")
        client.force_login(developer)
        page = text(client.get(self.url(change)))
        assert f'hx-get="{reverse("run-log", args=[run.pk])}?poll=1"' in page
        assert 'hx-trigger="every 2s"' in page and "<code>plan</code>" in page


class TestSubmit:
    def url(self, change):
        return reverse("change-request-submit", args=[change.pk])

    def test_it_queues_one_plan_per_workspace(
        self, client, developer, change, django_capture_on_commit_callbacks
    ):
        client.force_login(developer)
        with django_capture_on_commit_callbacks() as callbacks:
            response = client.post(self.url(change))
        assert response.status_code == 302
        change.refresh_from_db()
        assert change.status == ChangeStatus.SUBMITTED
        run = Run.objects.get()
        assert (run.kind, run.status, run.workspace.cluster.name) == ("plan", "queued", "demo")
        assert len(callbacks) == 1  # the dispatch, sent only after commit

    def test_it_requires_post(self, client, developer, change):
        client.force_login(developer)
        assert client.get(self.url(change)).status_code == 405

    def test_it_validates_ownership(self, client, outsider, change):
        client.force_login(outsider)
        assert client.post(self.url(change)).status_code == 404
        change.refresh_from_db()
        assert change.status == ChangeStatus.DRAFT and not Run.objects.exists()

    def test_a_reviewer_outside_the_team_may_not_submit(self, client, reviewer, change):
        client.force_login(reviewer)
        response = client.post(self.url(change))
        assert response.status_code == 403
        assert "Only the owning team" in text(response)
        change.refresh_from_db()
        assert change.status == ChangeStatus.DRAFT and not Run.objects.exists()

    def test_a_second_submit_is_a_message_not_an_error(self, client, teammate, change):
        client.force_login(teammate)
        client.post(self.url(change))
        response = client.post(self.url(change), follow=True)
        assert response.status_code == 200
        assert "it cannot become Submitted" in text(response)
        assert Run.objects.count() == 1


class TestApproveAndReject:
    def test_it_validates_ownership(self, client, outsider, planned):
        change = planned.change_request
        client.force_login(outsider)
        for name in ("change-request-approve", "change-request-reject"):
            response = client.post(reverse(name, args=[change.pk]), {"comment": "no"})
            assert response.status_code == 404
        change.refresh_from_db()
        assert change.status == ChangeStatus.PLANNED and not Review.objects.exists()

    def test_a_reviewer_approves_the_plans_shown(
        self, client, reviewer, planned, django_capture_on_commit_callbacks
    ):
        change = planned.change_request
        client.force_login(reviewer)
        with django_capture_on_commit_callbacks():
            response = client.post(
                reverse("change-request-approve", args=[change.pk]),
                {"comment": "least privilege", "plans": f"{planned.pk}:{'a' * 64}"},
            )
        assert response.status_code == 302
        change.refresh_from_db()
        assert change.status == ChangeStatus.APPLYING
        review = Review.objects.get()
        assert review.reviewer == reviewer and review.plan_hashes == {str(planned.pk): "a" * 64}
        apply = Run.objects.get(kind=RunKind.APPLY)
        assert apply.plan_run == planned and apply.status == RunStatus.QUEUED

    def test_approval_is_refused_when_the_plans_changed(self, client, reviewer, planned):
        change = planned.change_request
        client.force_login(reviewer)
        response = client.post(
            reverse("change-request-approve", args=[change.pk]),
            {"plans": f"{planned.pk}:{'b' * 64}"},
            follow=True,
        )
        assert "changed since they were shown" in text(response)
        change.refresh_from_db()
        assert change.status == ChangeStatus.PLANNED and not Review.objects.exists()

    def test_a_developer_cannot_approve(self, client, developer, planned):
        change = planned.change_request
        client.force_login(developer)
        response = client.post(
            reverse("change-request-approve", args=[change.pk]),
            {"plans": f"{planned.pk}:{'a' * 64}"},
        )
        assert response.status_code == 403
        change.refresh_from_db()
        assert change.status == ChangeStatus.PLANNED and not Review.objects.exists()
        page = text(client.get(reverse("change-request-detail", args=[change.pk])))
        assert reverse("change-request-approve", args=[change.pk]) not in page

    def test_a_reviewer_cannot_approve_their_own_request(self, client, reviewer, team, planned):
        team.members.add(reviewer)
        change = planned.change_request
        ChangeRequest.objects.filter(pk=change.pk).update(created_by=reviewer)
        client.force_login(reviewer)
        response = client.post(
            reverse("change-request-approve", args=[change.pk]),
            {"plans": f"{planned.pk}:{'a' * 64}"},
        )
        assert response.status_code == 403 and "never their own" in text(response)
        change.refresh_from_db()
        assert change.status == ChangeStatus.PLANNED and not Review.objects.exists()

    def test_reject_needs_a_comment(self, client, reviewer, planned):
        change = planned.change_request
        client.force_login(reviewer)
        response = client.post(reverse("change-request-reject", args=[change.pk]), {})
        assert response.status_code == 200
        assert response.context["review_form"].errors["comment"] == [
            "Say what has to change for approval."
        ]
        change.refresh_from_db()
        assert change.status == ChangeStatus.PLANNED and not Review.objects.exists()

    def test_a_reviewer_rejects_with_a_comment(self, client, reviewer, planned):
        change = planned.change_request
        client.force_login(reviewer)
        client.post(reverse("change-request-reject", args=[change.pk]), {"comment": "too wide"})
        change.refresh_from_db()
        assert change.status == ChangeStatus.REJECTED
        assert Review.objects.get().comment == "too wide"


class TestCancel:
    def url(self, change):
        return reverse("change-request-cancel", args=[change.pk])

    def test_it_validates_ownership(self, client, outsider, change):
        client.force_login(outsider)
        assert client.post(self.url(change)).status_code == 404
        change.refresh_from_db()
        assert change.status == ChangeStatus.DRAFT

    def test_the_team_cancels_and_queued_runs_are_cancelled(
        self, client, teammate, change, cluster
    ):
        run = plan(change, cluster, status=RunStatus.QUEUED)
        ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.SUBMITTED)
        client.force_login(teammate)
        assert client.post(self.url(change)).status_code == 302
        change.refresh_from_db()
        run.refresh_from_db()
        assert change.status == ChangeStatus.CANCELLED and run.status == RunStatus.CANCELLED

    def test_a_reviewer_may_not_cancel(self, client, reviewer, change):
        client.force_login(reviewer)
        assert client.post(self.url(change)).status_code == 403
        change.refresh_from_db()
        assert change.status == ChangeStatus.DRAFT


@pytest.fixture
def applied(change, cluster):
    """orders after its create request was applied in the demo cluster."""
    ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.APPLIED)
    microservice = change.microservice
    for r in RESOURCES:
        Resource.objects.create(microservice=microservice, **r)
    Workspace.objects.create(
        microservice=microservice,
        cluster=cluster,
        status=WorkspaceStatus.APPLIED,
        role_arn=ROLE_ARN,
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        resource_arns={"s3_bucket/invoices": "arn:aws:s3:::demo--orders--invoices"},
    )
    return microservice


class TestMicroservicePage:
    def url(self, name="orders"):
        return reverse("microservice-detail", args=[name])

    def test_it_validates_ownership(self, client, outsider, applied):
        client.force_login(outsider)
        assert client.get(self.url()).status_code == 404

    def test_an_applied_workspace_shows_arns_and_the_manifest(self, client, teammate, applied):
        client.force_login(teammate)
        page = text(client.get(self.url()))
        manifest = (
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: orders\n"
            f"  namespace: shop\n  annotations:\n    eks.amazonaws.com/role-arn: {ROLE_ARN}\n"
        )
        assert manifest in page
        assert "serviceAccountName: orders" in page
        assert "arn:aws:s3:::demo--orders--invoices" in page
        assert "key/1234abcd-12ab-34cd-56ef-1234567890ab" in page
        assert reverse("change-request-detail", args=[applied.change_requests.get().pk]) in page
        assert reverse("microservice-propose", args=["orders"]) in page

    def test_no_manifest_before_apply(self, client, developer, change):
        client.force_login(developer)
        page = text(client.get(self.url()))
        assert "eks.amazonaws.com/role-arn" not in page
        assert "No workspace yet" in page

    def test_a_reviewer_sees_it_without_edit_buttons(self, client, reviewer, applied):
        client.force_login(reviewer)
        page = text(client.get(self.url()))
        assert ROLE_ARN in page
        assert reverse("microservice-propose", args=["orders"]) not in page


def propose_post(**overrides) -> dict:
    data = register_post(service_accounts="orders", justification="needs a cache table")
    for key in ("name", "team", "description"):
        del data[key]
    data.update(overrides)
    return data


class TestProposeChange:
    url = reverse("microservice-propose", args=["orders"])

    def test_it_validates_ownership(self, client, outsider, applied):
        client.force_login(outsider)
        assert client.get(self.url).status_code == 404
        assert client.post(self.url, propose_post()).status_code == 404
        assert ChangeRequest.objects.count() == 1

    def test_a_reviewer_outside_the_team_gets_403(self, client, reviewer, applied):
        client.force_login(reviewer)
        assert client.get(self.url).status_code == 403
        assert client.post(self.url, propose_post()).status_code == 403
        assert ChangeRequest.objects.count() == 1

    def test_the_form_is_prefilled_from_the_live_spec(self, client, developer, applied):
        client.force_login(developer)
        editor = client.get(self.url).context["editor"]
        assert editor.form.initial["namespace"] == "shop"
        assert editor.form.initial["clusters"] == ["demo"]
        names = [f.initial.get("name") for f in editor.formset.forms]
        assert names == ["orders", "invoices", None]  # live rows, then one empty row

    def test_it_creates_a_change_request(self, client, developer, applied):
        client.force_login(developer)
        response = client.post(self.url, propose_post())
        change = ChangeRequest.objects.get(kind="change")
        assert response["Location"] == reverse("change-request-detail", args=[change.pk])
        assert change.status == ChangeStatus.DRAFT
        assert change.justification == "needs a cache table"

    def test_a_table_s_protection_is_chosen_or_left_to_the_cluster(
        self, client, developer, applied
    ):
        client.force_login(developer)
        chosen = {
            "resources-0-deletion_protection": "off",
            "resources-0-point_in_time_recovery": "on",
        }
        client.post(self.url, propose_post(**chosen))
        change = ChangeRequest.objects.get(kind="change")
        settings = change.spec["resources"][0]["settings"]
        assert settings["deletion_protection"] is False
        assert settings["point_in_time_recovery"] is True
        # Left unset (the row's initial), nothing goes in the spec: the cluster's default applies.
        table = {"kind": "dynamodb_table", "name": "t", "access": "read"}
        row = resource_initial({**table, "settings": {"point_in_time_recovery": True}})
        assert row["point_in_time_recovery"] == "on" and row["deletion_protection"] == ""

    def test_spec_errors_are_shown_and_nothing_is_written(self, client, developer, applied):
        client.force_login(developer)
        response = client.post(self.url, propose_post(**{"resources-0-name": "Orders"}))
        assert response.status_code == 200
        assert response.context["editor"].formset.forms[0].errors["name"]
        assert ChangeRequest.objects.count() == 1

    def test_an_open_request_blocks_a_second_one(self, client, developer, change):
        client.force_login(developer)
        response = client.post(self.url, propose_post(), follow=True)
        assert f"already has an open change request #{change.pk}" in text(response)
        assert ChangeRequest.objects.count() == 1


class TestDecommission:
    url = reverse("microservice-decommission", args=["orders"])

    def test_it_validates_ownership(self, client, outsider, applied):
        client.force_login(outsider)
        assert client.post(self.url, {"justification": "gone"}).status_code == 404
        assert ChangeRequest.objects.count() == 1

    def test_it_creates_a_decommission_request(self, client, developer, applied):
        client.force_login(developer)
        response = client.post(self.url, {"justification": "replaced by billing"})
        change = ChangeRequest.objects.get(kind="decommission")
        assert response["Location"] == reverse("change-request-detail", args=[change.pk])
        assert change.spec["clusters"] == [] and change.spec["namespace"] == "shop"

    def test_it_needs_a_justification(self, client, developer, applied):
        client.force_login(developer)
        response = client.post(self.url, {"justification": ""})
        assert response.context["form"].errors["justification"] == [
            "Say why the service needs this change."
        ]
        assert ChangeRequest.objects.count() == 1


class TestReviewQueue:
    url = reverse("review-queue")

    def test_it_validates_ownership(self, client, outsider, planned):
        client.force_login(outsider)
        assert client.get(self.url).status_code == 403

    def test_a_developer_gets_403(self, client, developer, planned):
        client.force_login(developer)
        assert client.get(self.url).status_code == 403

    def test_planned_requests_oldest_first(self, client, reviewer, developer, team, planned):
        other = MicroserviceFactory(name="billing", team=team)
        newer = ChangeRequest.objects.create(
            microservice=other,
            kind="create",
            status=ChangeStatus.PLANNED,
            spec={},
            justification="j",
            created_by=developer,
        )
        draft_service = MicroserviceFactory(name="drafts", team=team)
        ChangeRequest.objects.create(
            microservice=draft_service,
            kind="create",
            spec={},
            justification="j",
            created_by=developer,
        )
        client.force_login(reviewer)
        queue = list(client.get(self.url).context["queue"])
        assert queue == [planned.change_request, newer]


class TestRunPages:
    def test_it_validates_ownership(self, client, outsider, planned):
        client.force_login(outsider)
        assert client.get(reverse("run-detail", args=[planned.pk])).status_code == 404
        assert client.get(reverse("run-log", args=[planned.pk])).status_code == 404

    def test_run_detail_shows_log_status_and_exit_code(self, client, developer, change, cluster):
        run = plan(change, cluster, status=RunStatus.FAILED)
        Run.objects.filter(pk=run.pk).update(error="terraform plan failed", exit_code=1)
        client.force_login(developer)
        page = text(client.get(reverse("run-detail", args=[run.pk])))
        assert "terraform plan failed" in page
        assert "Terraform will perform the following actions" in page
        assert "exit code 1" in page and "Failed" in page

    def test_the_log_fragment_polls_until_the_run_finishes(
        self, client, developer, change, cluster
    ):
        run = plan(change, cluster, status=RunStatus.RUNNING)
        client.force_login(developer)
        url = reverse("run-log", args=[run.pk])
        running = client.get(url, {"poll": "1"})
        assert 'hx-trigger="every 2s"' in text(running) and "HX-Refresh" not in running
        Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
        done = client.get(url, {"poll": "1"})
        assert 'hx-trigger="every 2s"' not in text(done) and done["HX-Refresh"] == "true"

    def test_a_reviewer_sees_any_run(self, client, reviewer, planned):
        client.force_login(reviewer)
        assert client.get(reverse("run-detail", args=[planned.pk])).status_code == 200


def test_home_links_to_register_and_shows_only_visible_services(client, developer, change):
    MicroserviceFactory(name="search-api", team__name="search")
    client.force_login(developer)
    page = text(client.get(reverse("home")))
    assert reverse("microservice-register") in page
    assert "orders" in page and "search-api" not in page


def test_each_target_cluster_gets_its_own_preview(client, developer, team, cluster):
    second = ClusterFactory(name="prod-eu")
    change = register_orders(developer, team, cluster, clusters=[cluster, second])
    client.force_login(developer)
    sections = client.get(reverse("change-request-detail", args=[change.pk])).context["sections"]
    assert [s["name"] for s in sections] == ["demo", "prod-eu"]
    roles = [s["preview"]["document"]["role"]["arn"] for s in sections]
    assert roles == [ROLE_ARN, "arn:aws:iam::123456789012:role/irsa/prod-eu--orders"]
