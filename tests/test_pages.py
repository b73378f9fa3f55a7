"""The everyday pages across personas: dashboard, microservice list, inventory (+ CSV), audit."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from provisioning import models as m
from provisioning.services.audit import audit_record
from tests.factories import MicroserviceFactory

pytestmark = pytest.mark.django_db

ROLE = "arn:aws:iam::123456789012:role/irsa/demo-orders"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c"


def _live(microservice, cluster, status=m.WorkspaceStatus.APPLIED):
    ws = m.Workspace.objects.create(
        microservice=microservice, cluster=cluster, status=status, role_arn=ROLE, kms_key_arn=KEY
    )
    m.Run.objects.create(
        workspace=ws,
        kind=m.RunKind.APPLY,
        status=m.RunStatus.SUCCEEDED,
        outputs={"kms_key_arn": KEY},
        finished_at=timezone.now(),
    )
    return ws


def _page(client, user, name, *args, **params):
    client.force_login(user)
    return client.get(reverse(name, args=args), params)


class TestInventory:
    def test_owner_sees_roles_and_keys_with_links(self, client, developer, microservice, cluster):
        _live(microservice, cluster)
        page = _page(client, developer, "inventory").content.decode()
        assert ROLE in page and reverse("microservice-detail", args=["orders"]) in page
        keys = _page(client, developer, "inventory", kind="key").content.decode()
        assert KEY in keys and "Yearly" in keys

    def test_outsider_sees_nothing(self, client, outsider, microservice, cluster):
        _live(microservice, cluster)
        assert ROLE not in _page(client, outsider, "inventory").content.decode()
        body = _page(client, outsider, "inventory-csv").content.decode()
        assert list(csv.reader(io.StringIO(body)))[1:] == []

    def test_reviewer_filters_by_team_cluster_and_status(
        self, client, reviewer, microservice, cluster
    ):
        _live(microservice, cluster, status=m.WorkspaceStatus.DRIFTED)
        assert ROLE in _page(client, reviewer, "inventory", status="drifted").content.decode()
        assert ROLE not in _page(client, reviewer, "inventory", status="applied").content.decode()
        assert ROLE in _page(client, reviewer, "inventory", team="payments").content.decode()
        assert ROLE not in _page(client, reviewer, "inventory", cluster="nope").content.decode()

    def test_bad_filter_is_explained_not_a_500(self, client, developer, microservice, cluster):
        _live(microservice, cluster)
        response = _page(client, developer, "inventory", team="search", status="bogus")
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()

    def test_csv_export(self, client, developer, microservice, cluster):
        _live(microservice, cluster)
        response = _page(client, developer, "inventory-csv", kind="key")
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert rows[0]["arn"] == KEY and rows[0]["team"] == "payments"
        assert rows[0]["rotation"] and rows[0]["last_applied_at"]

    def test_service_page_links_to_inventory_and_timeline(
        self, client, developer, microservice, cluster
    ):
        _live(microservice, cluster)
        page = _page(client, developer, "microservice-detail", "orders").content.decode()
        assert reverse("inventory") + "?q=orders" in page
        assert reverse("microservice-audit", args=["orders"]) in page


class TestDashboardAndList:
    def test_dashboard_shows_my_services_and_their_state(
        self, client, developer, microservice, cluster
    ):
        _live(microservice, cluster, status=m.WorkspaceStatus.DRIFTED)
        page = _page(client, developer, "home").content.decode()
        assert "orders" in page and "Drift detected" in page
        assert "Waiting for your review" not in page
        assert reverse("review-queue") not in page  # no "Reviews" for a developer

    def test_reviewer_sees_the_queue_with_age(self, client, reviewer, developer, microservice):
        change = m.ChangeRequest.objects.create(
            microservice=microservice,
            kind=m.ChangeKind.CREATE,
            status=m.ChangeStatus.PLANNED,
            spec={},
            justification="x",
            created_by=developer,
        )
        page = _page(client, reviewer, "home").content.decode()
        assert "Waiting for your review" in page
        assert reverse("change-request-detail", args=[change.pk]) in page
        assert " min" in page and reverse("audit") in page

    def test_review_queue_shows_each_requests_age(self, client, reviewer, developer, microservice):
        m.ChangeRequest.objects.create(
            microservice=microservice,
            kind=m.ChangeKind.CREATE,
            status=m.ChangeStatus.PLANNED,
            spec={},
            justification="x",
            created_by=developer,
        )
        page = _page(client, reviewer, "review-queue").content.decode()
        assert "<th>Waiting</th>" in page and "0 min" in page

    def test_list_filters_search_and_status(self, client, developer, team, microservice, cluster):
        _live(microservice, cluster)
        MicroserviceFactory(name="billing", team=team)
        page = _page(client, developer, "microservice-list", q="bill").content.decode()
        assert "billing" in page and ">orders<" not in page
        live = _page(client, developer, "microservice-list", status="live").content.decode()
        assert ">orders<" in live and "billing" not in live

    def test_list_hides_others_services(self, client, outsider, microservice):
        assert ">orders<" not in _page(client, outsider, "microservice-list").content.decode()

    def test_list_pages(self, client, developer, team):
        for n in range(55):
            MicroserviceFactory(name=f"svc-{n:02d}", team=team)
        first = _page(client, developer, "microservice-list").content.decode()
        assert "svc-49" in first and "svc-50" not in first and "Page 1 of 2" in first
        second = _page(client, developer, "microservice-list", page=2).content.decode()
        assert "svc-54" in second


class TestAudit:
    def test_timeline_of_a_service(self, client, developer, outsider, microservice):
        audit_record(actor=developer, action="microservice.registered", obj=microservice)
        page = _page(client, developer, "microservice-audit", "orders").content.decode()
        assert "microservice.registered" in page and "alice" in page
        assert _page(client, outsider, "microservice-audit", "orders").status_code == 404

    def test_global_audit_is_for_security_and_staff(
        self, client, developer, reviewer, microservice, cluster
    ):
        audit_record(actor=None, action="cluster.node_role_audit_requested", obj=cluster)
        assert _page(client, developer, "audit").status_code == 404
        page = _page(client, reviewer, "audit").content.decode()
        assert "cluster.node_role_audit_requested" in page
        filtered = _page(client, reviewer, "audit", action="change_request.").content.decode()
        assert "cluster.node_role_audit_requested" not in filtered


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "name", ["home", "microservice-list", "inventory", "inventory-csv", "audit", "review-queue"]
)
def test_queries_per_page_do_not_grow_with_rows(client, reviewer, developer, team, cluster, name):
    """1 row and 50 rows cost the same number of queries."""
    client.force_login(reviewer)
    team.members.add(reviewer)  # the dashboard lists the reviewer's team's services too

    def add(n: int) -> None:
        for i in range(n):
            service = MicroserviceFactory(team=team)
            ws = _live(service, cluster, status=m.WorkspaceStatus.DRIFTED)
            audit_record(actor=developer, action="microservice.registered", obj=service)
            m.Run.objects.create(workspace=ws, kind=m.RunKind.PLAN, status=m.RunStatus.FAILED)
            m.ChangeRequest.objects.create(
                microservice=service,
                kind=m.ChangeKind.CHANGE,
                status=m.ChangeStatus.PLANNED if i % 2 else m.ChangeStatus.DRAFT,
                spec={},
                justification="x",
                created_by=developer,
            )

    add(1)
    one = _queries(client, reverse(name))
    add(49)
    assert _queries(client, reverse(name)) == one


INIT_LOG = (
    "$ terraform init -input=false\n"
    "Initializing provider plugins...\n"
    "Terraform has created a lock file .terraform.lock.hcl\n"
    "$ terraform plan -out=plan.bin\n"
    "Plan: 3 to add, 0 to change, 0 to destroy.\n"
)


class TestRunView:
    @pytest.fixture
    def run(self, microservice, cluster):
        ws = m.Workspace.objects.create(microservice=microservice, cluster=cluster)
        return m.Run.objects.create(
            workspace=ws,
            kind=m.RunKind.PLAN,
            status=m.RunStatus.RUNNING,
            current_step="plan",
            log=INIT_LOG,
            started_at=timezone.now(),
        )

    def test_log_follows_from_an_offset(self, client, developer, run):
        client.force_login(developer)
        url = reverse("run-log-tail", args=[run.pk])
        first = client.get(url, {"offset": 0}).json()
        assert first["text"] == INIT_LOG and first["active"] and first["step"] == "plan"
        m.Run.objects.filter(pk=run.pk).update(log=INIT_LOG + "more\n")
        second = client.get(url, {"offset": first["offset"]}).json()
        assert second["text"] == "more\n" and second["offset"] == len(INIT_LOG) + 5
        assert client.get(url, {"offset": "x"}).status_code == 400

    def test_page_folds_init_shows_step_elapsed_and_offers_raw_log(self, client, developer, run):
        client.force_login(developer)
        page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
        assert '<details class="log-init">' in page and "running for" in page
        assert f'data-follow-url="{reverse("run-log-tail", args=[run.pk])}"' in page
        raw = client.get(reverse("run-log-raw", args=[run.pk]))
        assert raw.content.decode() == INIT_LOG and "attachment" in raw["Content-Disposition"]

    def test_a_plan_with_changes_is_no_exit_code_jargon(self, client, developer, run):
        m.Run.objects.filter(pk=run.pk).update(
            status=m.RunStatus.SUCCEEDED, exit_code=2, has_changes=True, finished_at=timezone.now()
        )
        client.force_login(developer)
        page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
        assert "Succeeded · changes to apply" in page and "exit code" not in page
        assert "data-follow-url" not in page  # a finished log does not poll

    def test_outsider_gets_404(self, client, outsider, run):
        client.force_login(outsider)
        for name in ("run-log-tail", "run-log-raw"):
            assert client.get(reverse(name, args=[run.pk])).status_code == 404


def test_manifest_download_and_no_decommission_before_first_apply(
    client, developer, outsider, microservice, cluster
):
    client.force_login(developer)
    ws = m.Workspace.objects.create(microservice=microservice, cluster=cluster)
    page = client.get(reverse("microservice-detail", args=["orders"])).content.decode()
    assert "Create decommission request" not in page
    url = reverse("microservice-manifest", args=["orders", cluster.name])
    assert client.get(url).status_code == 404  # nothing live yet
    m.Workspace.objects.filter(pk=ws.pk).update(status=m.WorkspaceStatus.APPLIED, role_arn=ROLE)
    page = client.get(reverse("microservice-detail", args=["orders"])).content.decode()
    assert "Create decommission request" in page and 'data-copy-from="manifest-' in page
    manifest = client.get(url)
    assert f"eks.amazonaws.com/role-arn: {ROLE}" in manifest.content.decode()
    client.force_login(outsider)
    assert client.get(url).status_code == 404
