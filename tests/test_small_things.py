"""Operational niceties: expected refusals log one line, offline commands need no SECRET_KEY."""

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).parents[1]


def _manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "0", "DATABASE_URL": "sqlite:///:memory:"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_render_policies_runs_without_secret_key():
    result = _manage("render_policies", "docs/examples/reference-spec.json")
    assert result.returncode == 0, result.stderr
    assert "sts:AssumeRoleWithWebIdentity" in result.stdout


def test_a_serving_command_still_refuses_without_secret_key():
    result = _manage("check")
    assert result.returncode != 0 and "SECRET_KEY is not set" in result.stderr


@pytest.mark.django_db
def test_expected_404_and_403_log_one_line(client, outsider, developer, microservice, caplog):
    client.force_login(outsider)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get(reverse("microservice-detail", args=["orders"])).status_code == 404
        client.force_login(developer)
        assert client.get(reverse("review-queue")).status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [r.status_code for r in records] == [404, 403]
    assert all(r.exc_info is None for r in records)
    assert "Traceback" not in caplog.text
