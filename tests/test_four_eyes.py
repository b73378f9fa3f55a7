"""Four eyes without exceptions: admin cannot edit what the services own, and an apply runs only
the plan file whose sha256 the approving review recorded (a real runner with a fake Terraform)."""

import hashlib

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    ChangeStatus,
    Decision,
    Review,
    Run,
    RunKind,
    RunStatus,
    Workspace,
)
from provisioning.services.execution import run_execute
from tests.factories import RESOURCES, register_orders
from tests.fake_terraform import fake_terraform

PLAN_BYTES = b"the plan the reviewer read"


@pytest.fixture
def admin_client(client, db):
    admin = User.objects.create_superuser("root", "root@example.com", "pw-for-tests")
    client.force_login(admin)
    return client


@pytest.fixture
def approved(developer, team, cluster, reviewer):
    """A change request in `applying`: its plan approved by a review, its apply queued."""
    change = register_orders(developer, team, cluster)
    workspace = Workspace.objects.create(microservice=change.microservice, cluster=cluster)
    plan = Run.objects.create(
        workspace=workspace,
        change_request=change,
        kind=RunKind.PLAN,
        status=RunStatus.SUCCEEDED,
        spec=_workspace_spec(cluster),
        has_changes=True,
        plan_file=PLAN_BYTES,
        plan_sha256=hashlib.sha256(PLAN_BYTES).hexdigest(),
    )
    Review.objects.create(
        change_request=change,
        reviewer=reviewer,
        decision=Decision.APPROVE,
        plan_hashes={str(plan.pk): plan.plan_sha256},
    )
    ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.APPLYING)
    apply = Run.objects.create(
        workspace=workspace,
        change_request=change,
        kind=RunKind.APPLY,
        spec=plan.spec,
        plan_run=plan,
    )
    return change, plan, apply


def _workspace_spec(cluster):
    return {
        "microservice": "orders",
        "namespace": "shop",
        "service_accounts": ["orders"],
        "resources": RESOURCES,
        "cluster": {
            "name": cluster.name,
            "account_id": cluster.account_id,
            "region": cluster.region,
            "oidc_provider_arn": cluster.oidc_provider_arn,
        },
    }


@pytest.fixture
def fake_tf(settings, tmp_path):
    settings.TERRAFORM_BIN = str(fake_terraform(tmp_path, stdout="ok"))
    settings.TERRAFORM_WORK_DIR = tmp_path / "work"
    settings.TERRAFORM_BACKEND = "local"
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:9"  # a sandbox (never reached by the fake)


class TestAdminIsReadOnly:
    def test_admin_cannot_edit_a_change_requests_status(self, admin_client, approved):
        change, _, _ = approved
        url = reverse("admin:provisioning_changerequest_change", args=[change.pk])
        page = admin_client.get(url)
        assert page.status_code == 200  # viewable ...
        assert b'name="status"' not in page.content  # ... but no field to change
        response = admin_client.post(url, {"status": ChangeStatus.APPLIED, "spec": "{}"})
        assert response.status_code == 403
        assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.APPLYING

    @pytest.mark.parametrize("model", ["changerequest", "review", "run", "auditevent"])
    def test_nothing_the_services_own_can_be_added_or_deleted(self, admin_client, approved, model):
        change, plan, _ = approved
        obj = {
            "changerequest": change,
            "review": change.reviews.get(),
            "run": plan,
            "auditevent": AuditEvent.objects.first(),
        }[model]
        add = admin_client.get(reverse(f"admin:provisioning_{model}_add"))
        delete = admin_client.post(
            reverse(f"admin:provisioning_{model}_delete", args=[obj.pk]), {"post": "yes"}
        )
        assert add.status_code == 403 and delete.status_code == 403
        assert type(obj).objects.filter(pk=obj.pk).exists()

    def test_a_run_shows_its_plan_file_by_size_only(self, admin_client, approved):
        _, plan, _ = approved
        page = admin_client.get(reverse("admin:provisioning_run_change", args=[plan.pk]))
        assert page.status_code == 200 and f"{len(PLAN_BYTES)} bytes".encode() in page.content
        assert PLAN_BYTES not in page.content


class TestApplyBindsToTheReview:
    def test_a_plan_file_changed_after_approval_is_refused(self, approved, fake_tf):
        _, plan, apply = approved
        # Someone with database access swaps the plan and its row hash after the approval.
        swapped = b"a plan nobody reviewed"
        Run.objects.filter(pk=plan.pk).update(
            plan_file=swapped, plan_sha256=hashlib.sha256(swapped).hexdigest()
        )
        run_execute(run_id=apply.pk)
        apply.refresh_from_db()
        assert apply.status == RunStatus.FAILED
        assert "is not the plan the review approved" in apply.error
        assert "terraform apply" not in apply.log  # refused before Terraform ran it

    def test_a_plan_no_review_approved_is_refused(self, approved, fake_tf):
        change, plan, apply = approved
        Review.objects.filter(change_request=change).update(plan_hashes={"999": "f" * 64})
        run_execute(run_id=apply.pk)
        apply.refresh_from_db()
        assert apply.status == RunStatus.FAILED
        assert f"Plan run #{plan.pk} was not approved" in apply.error

    def test_the_approved_plan_goes_on_to_terraform_apply(self, approved, fake_tf):
        _, _, apply = approved
        run_execute(run_id=apply.pk)
        apply.refresh_from_db()
        # The fake Terraform reports no outputs: the run got past the check to the apply itself.
        assert "$ terraform apply" in apply.log
        assert "finished without reporting its outputs" in apply.error
