"""Brute-force limits: the login locks out after LOGIN_FAILURE_LIMIT wrong passwords (audited)
and lets the user back in after the window; API clients are throttled (429 + Retry-After),
bad tokens included."""

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from rest_framework.throttling import SimpleRateThrottle

from provisioning.models import AuditEvent
from provisioning.services.tokens import api_token_create

RIGHT = "right-password-for-rita"


@pytest.fixture
def fast_passwords(settings, reviewer):
    """MD5 only to keep 60 wrong logins quick; the lockout does not depend on the hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    reviewer.set_password(RIGHT)
    reviewer.save()
    return reviewer


def login(client, password: str):
    return client.post(reverse("login"), {"username": "rita", "password": password})


def test_the_61st_wrong_password_is_locked_out_then_let_in_after_the_window(
    client, settings, fast_passwords
):
    settings.AXES_FAILURE_LIMIT = 60
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    statuses = [login(client, f"wrong-{i}").status_code for i in range(60)]
    assert statuses[:59] == [200] * 59  # the form again, with its error
    locked = login(client, "wrong-61")
    assert locked.status_code == 429 and b"Too many failed logins" in locked.content
    assert int(locked["Retry-After"]) >= 1
    assert login(client, RIGHT).status_code == 429  # even the right password, while locked
    event = AuditEvent.objects.filter(action="auth.locked_out").first()  # one per locked try
    assert event.data["username"] == "rita" and event.object_id == str(fast_passwords.pk)

    time.sleep(2.2)
    response = login(client, RIGHT)
    assert response.status_code == 302 and response["Location"] == reverse("home")


def test_bad_tokens_are_refused_with_429_after_the_limit(client, settings, developer):
    settings.API_FAILED_AUTH_LIMIT = 5
    url = reverse("api-clusters")
    for i in range(5):
        response = client.get(url, HTTP_AUTHORIZATION=f"Token guess{i:036d}")
        assert response.status_code == 401
    throttled = client.get(url, HTTP_AUTHORIZATION="Token guess-six")
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    # From that address even a valid token waits: the guessing is what is slowed down.
    _, good = api_token_create(actor=developer, name="ci")
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {good}").status_code == 429


@pytest.mark.parametrize("how", ["token", "session"])
def test_api_clients_are_throttled(client, monkeypatch, developer, how):
    # DRF binds the rates (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]) when it is imported.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/min", "user": "3/min"})
    headers = {}
    if how == "token":
        headers["HTTP_AUTHORIZATION"] = f"Token {api_token_create(actor=developer, name='ci')[1]}"
    else:
        client.force_login(developer)
    statuses = [client.get(reverse("api-clusters"), **headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert int(client.get(reverse("api-clusters"), **headers)["Retry-After"]) > 0
