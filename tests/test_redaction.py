"""Secrets never stored: a fake Terraform prints planted secrets, the backend configuration and
server paths on stdout and stderr and fails; run through the real runner and services, no planted
secret is left in any text or JSON column of any table, nor in the API or the pages."""

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse

from provisioning.models import Run, RunKind, RunStatus, Workspace
from provisioning.redaction import BACKEND_MASK, PATH_MASK, REDACTED, redact_data, redact_text
from provisioning.services.execution import run_execute
from tests.factories import RESOURCES, register_orders
from tests.fake_terraform import fake_terraform

AWS_SECRET = "planted-aws-secret-0e6c1d9f"
SESSION_TOKEN = "planted-session-token-77a1b2"
PG_PASSWORD = "planted-pg-password-5c3e"
DB_URL_PASSWORD = "planted-db-url-pw-91ab"
BROKER_PASSWORD = "planted-broker-pw-4d2f"
PLANTED = [AWS_SECRET, SESSION_TOKEN, PG_PASSWORD, DB_URL_PASSWORD, BROKER_PASSWORD]
BACKEND_LINE = (
    f"Error: pq: connect to postgres://portal:{DB_URL_PASSWORD}@db.internal:5432/portal"
    "?sslmode=disable failed; host=db.internal user=portal sslmode=disable"
)
PATH_LINE = "Error: reading /srv/portal/var/terraform/runs/run7-0a1b2c3d/main.tf"


@pytest.fixture
def planted(monkeypatch, settings, tmp_path):
    """The worker's secret environment, and a Terraform that prints all of it and fails."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)
    monkeypatch.setenv("PORTAL_DATABASE_URL", f"postgres://portal:{DB_URL_PASSWORD}@db:5432/p")
    monkeypatch.setenv("PORTAL_BROKER_URL", f"redis://:{BROKER_PASSWORD}@redis:6379/0")
    printed = "\n".join([f"secret {s}" for s in PLANTED] + [BACKEND_LINE, PATH_LINE])
    binary = fake_terraform(tmp_path, stdout=printed, stderr=printed, exit_code={"init": 1})
    settings.TERRAFORM_BIN = str(binary)
    settings.TERRAFORM_WORK_DIR = tmp_path / "work"
    settings.TERRAFORM_BACKEND = "local"
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:9"  # a sandbox (never reached by the fake)


def stored_texts() -> list[tuple[str, str, str]]:
    """(table, column, value) for every text and JSON column of every table with a value."""
    found = []
    with connection.cursor() as cursor:
        for model in apps.get_models(include_auto_created=True):
            table = model._meta.db_table
            for field in model._meta.concrete_fields:
                if field.get_internal_type() not in ("TextField", "CharField", "JSONField"):
                    continue
                # Quoted identifiers from the models themselves: nothing user-supplied.
                column = connection.ops.quote_name(field.column)
                query = f"SELECT {column}::text FROM {connection.ops.quote_name(table)}"  # noqa: S608
                cursor.execute(query)
                found += [(table, field.column, row[0]) for row in cursor.fetchall() if row[0]]
    return found


def test_planted_secrets_are_stored_and_shown_nowhere(planted, client, developer, team, cluster):
    change = register_orders(developer, team, cluster)
    workspace = Workspace.objects.create(microservice=change.microservice, cluster=cluster)
    run = Run.objects.create(
        workspace=workspace,
        change_request=change,
        kind=RunKind.PLAN,
        spec={
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
        },
    )
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "terraform init failed" in run.error
    assert REDACTED in run.log and REDACTED in run.error  # Terraform did print them
    assert BACKEND_MASK in run.log and "db.internal" not in run.log + run.error
    assert f"{PATH_MASK}/main.tf" in run.log and "/srv/portal" not in run.log + run.error

    texts = stored_texts()
    assert any(t == "provisioning_run" and c == "error" for t, c, _ in texts)  # the scan sees it
    leaks = [(t, c) for t, c, value in texts for s in PLANTED if s in value]
    assert leaks == []

    client.force_login(developer)
    pages = [
        client.get(reverse("api-run-detail", args=[run.pk])),
        client.get(reverse("run-detail", args=[run.pk])),
        client.get(reverse("run-log", args=[run.pk])),
        client.get(reverse("change-request-detail", args=[change.pk])),
    ]
    for response in pages:
        assert response.status_code == 200
        assert not [s for s in PLANTED if s.encode() in response.content]


def test_redaction_masks_secrets_backend_configuration_and_paths():
    secrets = ["s3cr3t-value"]
    line = (
        "-backend-config=conn_str=postgres://u@h:5432/d?sslmode=disable token s3cr3t-value "
        "at /var/lib/portal/runs/x/main.tf for arn:aws:iam::1:role/irsa/demo-orders "
        "see https://example.com/a/b and GET /api/runs/3/"
    )
    text = redact_text(line, secrets=secrets)
    assert "s3cr3t-value" not in text and "sslmode" not in text and "/var/lib" not in text
    assert f"{PATH_MASK}/main.tf" in text
    assert "role/irsa/demo-orders" in text and "https://example.com/a/b" in text  # not paths
    assert "GET /api/runs/3/" in text
    data = redact_data({"error": line, "list": [line], "n": 3}, secrets=secrets)
    assert data["n"] == 3 and "s3cr3t-value" not in str(data)


def test_the_process_log_is_redacted(planted):
    import logging

    from provisioning.redaction import RedactingFilter

    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %s", (BACKEND_LINE,), None)
    assert RedactingFilter().filter(record)
    assert DB_URL_PASSWORD not in record.getMessage() and "db.internal" not in record.getMessage()
