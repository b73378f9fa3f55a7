"""Strict production settings: `check --deploy` is clean with DEBUG=0 behind a TLS proxy, HTTPS is
enforced (redirect, HSTS, secure cookies), the Content-Security-Policy allows no inline script,
and no process starts against real AWS without a permissions boundary."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from portal.startup import BOUNDARY_MISSING, aws_target_problem

ROOT = Path(__file__).parents[1]
PRODUCTION = {
    "PATH": "/usr/bin:/bin",
    "DEBUG": "0",
    "SECRET_KEY": "x7#Lq2!vR9pZ" * 5,  # long and varied, as check --deploy wants
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "sqlite:///:memory:",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "IRSA_PERMISSIONS_BOUNDARY_ARN": "arn:aws:iam::123456789012:policy/irsa-boundary",
}


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_production_settings():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "DEBUG"], PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_nothing_starts_against_real_aws_without_a_boundary():
    env = {k: v for k, v in PRODUCTION.items() if k != "IRSA_PERMISSIONS_BOUNDARY_ARN"}
    check = run(["manage.py", "check"], env)
    assert check.returncode != 0 and "irsa.E001" in check.stderr
    assert "Set IRSA_PERMISSIONS_BOUNDARY_ARN" in check.stderr
    web = run(["-c", "import portal.wsgi"], {**env, "DJANGO_SETTINGS_MODULE": "portal.settings"})
    assert web.returncode != 0 and "ImproperlyConfigured" in web.stderr
    sandbox = run(["manage.py", "check"], {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"})
    assert sandbox.returncode == 0, sandbox.stderr


def test_the_boundary_rule():
    assert aws_target_problem(endpoint_url="", boundary_arn="") == BOUNDARY_MISSING
    assert aws_target_problem(endpoint_url="", boundary_arn="arn:aws:iam::1:policy/b") is None
    assert aws_target_problem(endpoint_url="http://127.0.0.1:4566", boundary_arn="") is None


def test_https_is_enforced_behind_the_proxy(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    plain = client.get(reverse("login"))
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    secure = client.get(reverse("login"), HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert "max-age=31536000" in secure["Strict-Transport-Security"]
    assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE  # DEBUG=0


def test_the_csp_header_allows_no_inline_script(client, developer):
    client.force_login(developer)
    policy = client.get(reverse("home"))["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in policy and "default-src 'self'" in policy


@pytest.mark.parametrize("template", sorted((ROOT / "templates").rglob("*.html")), ids=str)
def test_templates_carry_no_inline_script(template):
    text = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script>"
    assert not re.search(r"\s(?:on[a-z]+|hx-on[:\w-]*)\s*=", text), "inline event handler"
    assert "javascript:" not in text


def test_the_dockerfile_verifies_the_terraform_archive():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pinned = re.search(r"ARG TERRAFORM_SHA256=([0-9a-f]+)\n", dockerfile)
    assert pinned and len(pinned.group(1)) == 64
    download = dockerfile.index("curl -fsSLo /tmp/tf.zip")
    check = dockerfile.index('echo "${TERRAFORM_SHA256}  /tmp/tf.zip" | sha256sum -c -')
    assert download < check < dockerfile.index("unzip /tmp/tf.zip")
