"""The portal in a real browser (Debian's Chromium via Playwright, headless) against a live
server, a real Celery worker, real Terraform and the sandbox: a developer registers a service, a
reviewer rejects it with a comment, the developer proposes again, the reviewer approves, the
apply runs; the inventory lists the role and key. Every page visited must fit in 1280 px.

One apply in all (the expensive part); the plans are real too, since the review page shows them.
A second test opens the review page of a change with a grant diff and a blocking finding: its
plans finished as the worker finishes them (tests/test_review.py), no worker or Terraform.

``SCREENSHOT_DIR=docs`` refreshes the docs' images: screenshot, dashboard, inventory,
review-approve (the flow) and review (the page with findings).
"""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import Group

from provisioning.models import ChangeRequest, ChangeStatus, RunKind, Workspace
from provisioning.permissions import SECURITY_GROUP
from provisioning.services.runs import wait_for_run
from tests.browser.pages import (
    assert_fits,
    browser_page,
    chromium_available,
    log_in,
    screenshot,
)
from tests.factories import RESOURCES, TeamFactory, UserFactory
from tests.integration.conftest import make_demo_cluster, wait_for_change_status
from tests.integration.test_review_flow import (
    celery_app,
    point_celery_at,
    worker,  # noqa: F401 (the module's Celery worker)
)
from tests.test_review import (
    make_applied,
    planned_change,
    planned_create,
    widened_catalog,  # noqa: F401 (a fixture)
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed (.ci/run does)"),
]
# Playwright's sync API runs an event loop in this thread; the ORM calls here are still plain
# synchronous code between browser steps.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def visit(page, url: str) -> None:
    page.goto(url)
    assert_fits(page)


@pytest.fixture
def people(demo_aws):
    team = TeamFactory(name="payments")
    developer = UserFactory(username="alice", email="alice@example.com")
    team.members.add(developer)
    reviewer = UserFactory(username="rita", email="rita@example.com")
    reviewer.groups.add(Group.objects.get_or_create(name=SECURITY_GROUP)[0])
    make_demo_cluster(demo_aws)
    return developer, reviewer


def register_in_browser(page, base: str, name: str) -> None:
    visit(page, f"{base}/register/")
    page.fill("#id_name", name)
    page.select_option("#id_team", "payments")
    page.fill("#id_namespace", "shop")
    page.fill("#id_service_accounts", name)
    page.check("input[name=clusters][value=demo]")
    page.fill("#id_justification", "stores orders")
    page.select_option("select[name=resources-0-kind]", "s3_bucket")
    # Only the bucket's settings show once the kind is a bucket.
    assert page.is_hidden("input[name=resources-0-partition_key_name]")
    assert page.is_visible("input[name=resources-0-versioning]")
    page.fill("input[name=resources-0-name]", "invoices")
    page.select_option("select[name=resources-0-access]", "read")
    page.click("button:has-text('Register')")
    page.wait_for_url(f"{base}/changes/*/")
    assert_fits(page)


def submit_and_wait_for_plans(page, base: str, change: ChangeRequest) -> None:
    page.click("button:has-text('Submit for planning')")
    # The live view: a status line that refreshes itself, a log that follows.
    page.wait_for_selector(".run-head")
    wait_for_change_status(change, ChangeStatus.PLANNED)


def test_developer_reviewer_apply_flow_with_a_rejection(live_server, worker, people):  # noqa: F811
    assert people  # alice (developer) and rita (reviewer) exist
    base = live_server.url
    with browser_page() as page:
        log_in(page, base, "alice")
        assert_fits(page)
        assert page.locator("nav >> text=Reviews").count() == 0  # not a reviewer
        register_in_browser(page, base, "orders")
        change = ChangeRequest.objects.get(microservice__name="orders")
        submit_and_wait_for_plans(page, base, change)

        # The reviewer sees the request waiting, with its age, and rejects it with a comment.
        log_in(page, base, "rita")
        assert page.locator("text=Waiting for your review").count() == 1
        screenshot(page, "dashboard")
        visit(page, f"{base}/changes/{change.pk}/")
        page.fill("textarea[name=comment]", "Read only is enough? Say why the bucket is needed.")
        page.click("button:has-text('Reject')")
        wait_for_change_status(change, ChangeStatus.REJECTED, timeout=30)

        # The developer sees why, proposes again, and it is approved and applied.
        log_in(page, base, "alice")
        visit(page, f"{base}/changes/{change.pk}/")
        assert page.locator("text=Say why the bucket is needed").count() >= 1
        visit(page, f"{base}/services/orders/")
        assert page.locator("text=Create decommission request").count() == 0  # never applied
        page.click("a:has-text('Propose change')")
        page.fill("#id_justification", "invoices are read by the billing job")
        page.click("button[type=submit]:not([name=add_row])")
        page.wait_for_url(f"{base}/changes/*/")
        second = ChangeRequest.objects.exclude(pk=change.pk).get(microservice__name="orders")
        submit_and_wait_for_plans(page, base, second)

        log_in(page, base, "rita")
        visit(page, f"{base}/changes/{second.pk}/")
        screenshot(page, "review-approve")
        page.click("button:has-text('Approve these plans')")
        apply = Workspace.objects.get(microservice__name="orders").runs.get(kind=RunKind.APPLY)
        visit(page, f"{base}/runs/{apply.pk}/")
        assert page.locator(".run-head").count() == 1
        assert wait_for_run(apply.pk, timeout=400).status == "succeeded"
        wait_for_change_status(second, ChangeStatus.APPLIED, timeout=60)

        # The developer finds the live role, its manifest, and both in the inventory.
        log_in(page, base, "alice")
        role_arn = Workspace.objects.get(microservice__name="orders").role_arn
        visit(page, f"{base}/services/orders/")
        assert page.locator(f"code:has-text('{role_arn}')").count() >= 1
        assert page.locator("button:has-text('Copy manifest')").count() == 1
        screenshot(page, "screenshot")
        visit(page, f"{base}/runs/{apply.plan_run_id}/")
        assert page.locator("details.log-init").count() == 1  # init folded once done
        visit(page, f"{base}/runs/{apply.pk}/")  # the plan's initialised directory, taken over
        assert page.locator("details.log-init").count() == 0
        assert page.locator("text=init skipped").count() == 1
        visit(page, f"{base}/inventory/")
        assert page.locator(f"text={role_arn}").count() == 1
        screenshot(page, "inventory")
        visit(page, f"{base}/inventory/?kind=key")
        assert page.locator("text=Yearly").count() == 1
        for path in (
            "/",
            "/services/",
            "/clusters/",
            "/services/orders/audit/",
            "/profile/notifications/",
            f"/changes/{second.pk}/",
        ):
            visit(page, base + path)

        log_in(page, base, "rita")
        for path in ("/", "/reviews/", "/audit/", "/inventory/", "/clusters/demo/"):
            visit(page, base + path)


@pytest.fixture
def no_worker():
    """Runs go to a broker nobody answers (whatever worker this module started), so they stay
    queued for the test to finish as the worker would."""
    previous = celery_app.conf.broker_url
    point_celery_at("redis://127.0.0.1:9/0")
    yield
    point_celery_at(previous)


@pytest.mark.usefixtures("widened_catalog", "no_worker")
def test_the_review_page_shows_the_grant_diff_and_a_blocking_finding(
    live_server, developer, reviewer, team, cluster
):
    """orders applied; a change adds an `exports` bucket, planned after an admin widened the
    catalog's DynamoDB read_write level with dynamodb:DeleteTable (a high finding)."""
    create = planned_create(developer, team, cluster)
    make_applied(create)
    exports = {"kind": "s3_bucket", "name": "exports", "access": "read_write"}
    change = planned_change(
        developer, create, [*RESOURCES, exports], "orders exports invoices for the accounting team"
    )
    base = live_server.url
    with browser_page() as page:
        log_in(page, base, reviewer.username)
        visit(page, f"{base}/changes/{change.pk}/")
        added = page.locator("table.grants tr.grant-added")
        assert added.count() >= 1
        texts = added.all_inner_texts()  # only the new bucket's grants are added
        assert all(text.rstrip("/*").endswith("exports") for text in texts), texts
        finding = page.locator("table.findings tbody tr")
        assert finding.count() == 1 and "IRSA005" in finding.inner_text()
        assert "dynamodb:DeleteTable" in finding.inner_text()
        assert page.locator("text=blocked: high findings").count() == 1
        assert page.locator("text=High findings block approval").count() == 1
        screenshot(page, "review", full_page=True)
