"""Screenshots for the docs, with Debian's Chromium.

Usage:
  .venv/bin/python scripts/screenshot.py USER PASSWORD PATH [OUT.png]
      a page of a running portal (`make run`), e.g. the README's docs/screenshot.png;
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/shots .venv/bin/python scripts/screenshot.py \
      --review [OUT.png]
      docs/review.png: the review page of a change request with its grant diff and a finding.
      It builds its own throwaway database (test_<name>) and serves it in-process; the plan runs
      are finished as the worker finishes them (no Terraform), and the finding comes from the
      real lint: the action catalog, as an admin might widen it, gains dynamodb:DeleteTable.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

BASE = "http://127.0.0.1:8000"
REVIEWER_PASSWORD = secrets.token_urlsafe(12)  # a throwaway user in a throwaway database
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main(user: str, password: str, path: str, out: str = "docs/screenshot.png") -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"{BASE}/login/")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.goto(f"{BASE}{path}")
        page.screenshot(path=out, full_page=False)
        browser.close()


def review(out: str = "docs/review.png") -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ["DEBUG"] = "1"  # plain-http session cookies for the in-process server
    import django

    django.setup()
    from django.test.runner import DiscoverRunner

    runner = DiscoverRunner(verbosity=0, interactive=False)
    databases = runner.setup_databases()
    try:
        change = _seed_review_demo()
        _serve_and_shoot(f"/changes/{change.pk}/", out)
    finally:
        runner.teardown_databases(databases)


def _seed_review_demo():
    """orders applied in demo; then a change adding an `exports` bucket, planned after an admin
    widened the catalog's DynamoDB read_write level with dynamodb:DeleteTable."""
    from django.contrib.auth.models import Group, User

    from provisioning.analysis import lint, matrix
    from provisioning.analysis import review as analysis_review
    from provisioning.iam import catalog, policies, spec
    from provisioning.management.commands.seed_demo import demo_oidc_provider_arn
    from provisioning.models import Cluster, Team
    from provisioning.permissions import SECURITY_GROUP
    from tests.factories import RESOURCES
    from tests.test_review import make_applied, planned_change, planned_create

    team = Team.objects.create(name="payments")
    developer = User.objects.create_user("alice")
    team.members.add(developer)
    reviewer = User.objects.create_user("rita", password=REVIEWER_PASSWORD)
    reviewer.groups.add(Group.objects.create(name=SECURITY_GROUP))
    cluster = Cluster.objects.create(
        name="demo",
        environment="dev",
        account_id="123456789012",
        region="us-east-1",
        oidc_provider_arn=demo_oidc_provider_arn(),
    )
    create = planned_create(developer, team, cluster)
    make_applied(create)
    data = json.loads(catalog.CATALOG_PATH.read_text())
    statement = data["kinds"]["dynamodb_table"]["levels"]["read_write"]["statements"][0]
    statement["actions"] = sorted([*statement["actions"], "dynamodb:DeleteTable"])
    widened = catalog.parse_catalog(data)
    for module in (spec, policies, lint, matrix, analysis_review):
        module.load_catalog = lambda *a, **k: widened  # type: ignore[attr-defined]
    exports = {"kind": "s3_bucket", "name": "exports", "access": "read_write"}
    return planned_change(
        developer, create, [*RESOURCES, exports], "orders exports invoices for the accounting team"
    )


def _serve_and_shoot(path: str, out: str) -> None:
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread

    server = LiveServerThread("127.0.0.1", StaticFilesHandler)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    try:
        base = f"http://127.0.0.1:{server.port}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{base}/login/")
            page.fill("input[name=username]", "rita")
            page.fill("input[name=password]", REVIEWER_PASSWORD)
            page.click("button[type=submit]")
            page.goto(f"{base}{path}")
            page.screenshot(path=out, full_page=True)
            browser.close()
    finally:
        server.terminate()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--review"]:
        review(*sys.argv[2:])
    else:
        main(*sys.argv[1:])
