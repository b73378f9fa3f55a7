"""Single sign-on against a real OpenID Connect provider (npm oidc-provider, tests/oidc_idp/)
started on loopback: the portal's authorization-code flow, its token and userinfo calls and the
ID token's signature are all real. Group claims map to a team, security review and admin; a user
in no mapped group is refused."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from provisioning.models import AuditEvent
from provisioning.permissions import is_reviewer
from tests.factories import TeamFactory

pytestmark = pytest.mark.integration
IDP_DIR = Path(__file__).resolve().parents[1] / "oidc_idp"
SECRET = "sso-test-client-secret-3f9a1c"
ACCOUNTS = {
    "u-1001": {
        "preferred_username": "carol",
        "email": "carol@example.com",
        "groups": ["okta-payments-devs", "okta-security"],
    },
    "u-1002": {"preferred_username": "dave", "email": "dave@example.com", "groups": ["sales"]},
}


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(
            "The test IdP is not installed: run `npm ci --prefix tests/oidc_idp` (make idp)."
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("idp") / "idp.log"
    process = subprocess.Popen(
        ["node", "server.mjs", str(port), "http://testserver/oidc/callback/", SECRET],
        cwd=IDP_DIR,
        env={"PATH": os.environ["PATH"], "IDP_ACCOUNTS": json.dumps(ACCOUNTS)},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while f"ready on {port}" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=10)


@pytest.fixture
def sso(settings, idp):
    settings.OIDC_RP_CLIENT_ID = "irsa-portal"
    settings.OIDC_RP_CLIENT_SECRET = SECRET
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{idp}/auth"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{idp}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{idp}/me"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{idp}/jwks"
    settings.SSO_TEAM_GROUPS = {"okta-payments-devs": "payments"}
    settings.SSO_REVIEWER_GROUPS = ["okta-security"]
    settings.SSO_ADMIN_GROUPS = ["okta-platform"]
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "provisioning.sso.PortalOIDCBackend",
    ]
    return idp


class IdpBrowser:
    """The user's browser at the IdP: follows its redirects, keeps its cookies, fills in the
    IdP's own login and consent pages; returns where the IdP finally sends the browser."""

    def __init__(self, base: str):
        self.host = urlsplit(base)
        self.cookies: dict[str, str] = {}

    def go(self, url: str, *, account: str) -> str:
        for _ in range(12):
            parts = urlsplit(url)
            if parts.netloc != self.host.netloc:
                return url  # back to the portal
            response, body = self._request("GET", url)
            if response.status in (302, 303):
                url = self._absolute(response.headers["Location"])
                continue
            form = re.search(r'action="([^"]+)"', body).group(1)
            prompt = "login" if 'name="login"' in body else "consent"
            data = f"prompt={prompt}&login={account}&password=any"
            response, _ = self._request("POST", self._absolute(form), data)
            url = self._absolute(response.headers["Location"])
        raise AssertionError("the IdP never sent the browser back")

    def _absolute(self, location: str) -> str:
        return (
            location if "://" in location else f"{self.host.scheme}://{self.host.netloc}{location}"
        )

    def _request(self, method: str, url: str, body: str = ""):
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            self.cookies.update({k: m.value for k, m in SimpleCookie(header).items()})
        conn.close()
        return response, text


def sso_login(client, idp: str, account: str):
    start = client.get(reverse("sso-start"))
    assert start.status_code == 302 and start["Location"].startswith(f"{idp}/auth")
    back = urlsplit(IdpBrowser(idp).go(start["Location"], account=account))
    assert back.path == "/oidc/callback/" and "code=" in back.query
    return client.get(f"{back.path}?{back.query}")


@pytest.mark.django_db
def test_sso_login_maps_groups_to_team_and_reviewer(client, sso):
    team = TeamFactory(name="payments")
    response = sso_login(client, sso, "u-1001")
    assert response.status_code == 302 and response["Location"] == reverse("home")
    carol = User.objects.get(username="carol")
    assert carol.email == "carol@example.com" and not carol.has_usable_password()
    assert list(carol.teams.all()) == [team] and is_reviewer(carol)
    assert not carol.is_staff
    assert client.get(reverse("home")).status_code == 200  # logged in
    assert AuditEvent.objects.filter(action="auth.sso_login", actor=carol).exists()


@pytest.mark.django_db
def test_a_user_in_no_mapped_group_is_refused(client, sso):
    response = sso_login(client, sso, "u-1002")
    assert response.status_code == 302 and response["Location"] == "/login/?sso=refused"
    assert not User.objects.filter(username="dave").exists()
    page = client.get(response["Location"])
    assert b"Single sign-on did not let you in" in page.content
    assert AuditEvent.objects.get(action="auth.sso_refused").data["username"] == "dave"


@pytest.mark.django_db
def test_password_login_can_be_switched_off(client, settings, developer):
    settings.LOCAL_LOGIN_ENABLED = False
    assert b'name="password"' not in client.get(reverse("login")).content
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-for-tests"})
    assert response.status_code == 403
