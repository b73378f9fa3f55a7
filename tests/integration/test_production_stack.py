"""The production stack, as docs/deploy.md runs it: gunicorn serving portal.settings with DEBUG=0
behind a (simulated) TLS proxy, PostgreSQL, a separate Celery worker and beat on a private Redis,
static files collected and served by whitenoise, the sandbox as AWS. One flow over HTTP: log in
with the form, register a microservice and submit it through the API, and its real Terraform
plan finishes on the worker."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from django.db import connection

from sandbox.celery_worker import CeleryWorker
from sandbox.redis import RedisServer
from tests.factories import RESOURCES, TeamFactory, UserFactory
from tests.integration.conftest import make_demo_cluster

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
PASSWORD = "production-stack-pw-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack_env(sandbox, terraform_root, django_db_setup, tmp_path_factory):
    db = connection.settings_dict
    var = tmp_path_factory.mktemp("portal-var")
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": "portal.settings",  # the real settings, not the tests'
        "DEBUG": "0",
        "SECRET_KEY": "q8#Vt3!mW6zR" * 5,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        "PORTAL_VAR_DIR": str(var),
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "AWS_ENDPOINT_URL": sandbox.endpoint_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "TERRAFORM_WORK_DIR": str(terraform_root),
        "TERRAFORM_BACKEND": "pg",
    }


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory):
    """Redis, collectstatic, gunicorn (2 workers), a Celery worker and beat; yields the port."""
    logs = tmp_path_factory.mktemp("stack")
    broker = RedisServer().start()
    env = {**stack_env, "CELERY_BROKER_URL": broker.url}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    port = free_port()
    started: list[subprocess.Popen] = []
    worker = None
    try:
        started.append(
            _spawn(
                [str(GUNICORN), "portal.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
                env,
                logs / "gunicorn.log",
            )
        )
        started.append(
            _spawn(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "beat",
                    "--schedule",
                    str(logs / "beat-schedule"),
                    "--loglevel",
                    "INFO",
                ],
                env,
                logs / "beat.log",
            )
        )
        worker = CeleryWorker(env=env, log=logs / "worker.log")
        _wait_for(lambda: _answers(port), "gunicorn to answer", logs / "gunicorn.log")
        _wait_for(
            lambda: "beat: Starting" in (logs / "beat.log").read_text(), "beat", logs / "beat.log"
        )
        yield port
    finally:
        if worker is not None:
            worker.stop()
        for process in started:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        broker.stop()


def _spawn(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _answers(port: int) -> bool:
    try:
        Browser(port).request("GET", "/healthz")
    except OSError:
        return False
    return True


def _wait_for(ready, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"no {what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)


class Browser:
    """HTTP through the TLS proxy's eyes (X-Forwarded-Proto: https), keeping cookies itself:
    the portal marks them Secure, and this hop is plain HTTP."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str = "", headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"X-Forwarded-Proto": "https", "Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        content = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(header)
            self.cookies.update({k: m.value for k, m in cookie.items()})
        conn.close()
        return response, content

    def csrf_headers(self, referer: str) -> dict:
        return {
            "X-CSRFToken": self.cookies["csrftoken"],
            "Referer": f"https://127.0.0.1:{self.port}{referer}",
        }

    def api(self, method: str, path: str, data: dict | None = None):
        headers = {"Content-Type": "application/json", **self.csrf_headers("/")}
        response, content = self.request(method, path, json.dumps(data or {}), headers)
        return response.status, json.loads(content or b"{}")


def test_log_in_register_and_plan_on_the_production_stack(stack, demo_aws, unique_name):
    team = TeamFactory(name="payments")
    developer = UserFactory(username="alice", password=PASSWORD)
    team.members.add(developer)
    make_demo_cluster(demo_aws)
    browser = Browser(stack)

    page, content = browser.request("GET", "/login/")
    assert page.status == 200
    assert "max-age=" in page.headers["Strict-Transport-Security"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    css = re.search(rb'href="(/static/[^"]+\.css)"', content).group(1).decode()
    static, body = browser.request("GET", css)
    assert static.status == 200 and b"htmx-indicator" in body  # collected, served by whitenoise

    form = f"username=alice&password={PASSWORD}&csrfmiddlewaretoken={browser.cookies['csrftoken']}"
    login, _ = browser.request(
        "POST",
        "/login/",
        form,
        {"Content-Type": "application/x-www-form-urlencoded", **browser.csrf_headers("/login/")},
    )
    assert login.status == 302 and "sessionid" in browser.cookies

    status, change = browser.api(
        "POST",
        "/api/microservices/",
        {
            "name": unique_name,
            "team": "payments",
            "namespace": "shop",
            "service_accounts": ["api"],
            "resources": RESOURCES,
            "clusters": ["demo"],
            "justification": "production stack test",
        },
    )
    assert status == 201, change
    status, submitted = browser.api("POST", f"/api/change-requests/{change['id']}/submit/")
    assert status == 200, submitted
    deadline = time.monotonic() + 300
    while True:
        status, detail = browser.api("GET", f"/api/change-requests/{change['id']}/")
        if detail["status"] != "submitted":
            break
        assert time.monotonic() < deadline, "the plan did not finish"
        time.sleep(1)
    assert detail["status"] == "planned", detail
    [run] = [r for r in detail["runs"] if r["kind"] == "plan"]
    assert run["status"] == "succeeded" and run["has_changes"]
