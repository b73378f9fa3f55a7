"""API tokens with a lifecycle: created on the profile page (shown once, hashed at rest), listed,
revoked by their owner or a platform admin, refused once revoked or expired; all audited."""

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from provisioning.iam.spec import SpecError
from provisioning.models import ApiToken, AuditEvent
from provisioning.services.tokens import api_token_create, api_token_revoke


def api(client, key: str):
    return client.get(reverse("api-clusters"), HTTP_AUTHORIZATION=f"Token {key}")


def test_create_on_the_profile_page_shows_the_key_once_and_stores_its_hash(client, developer):
    client.force_login(developer)
    page = client.post(reverse("profile"), {"name": "ci-pipeline", "days": "7"})
    assert page.status_code == 200
    token = ApiToken.objects.get(user=developer)
    key = page.context["new_key"]
    assert key.startswith("irsa_") and key.encode() in page.content
    assert token.digest == hashlib.sha256(key.encode()).hexdigest()
    assert not [f for f in ("name", "prefix", "digest") if getattr(token, f) == key]
    assert timedelta(days=6, hours=23) < token.expires_at - timezone.now() <= timedelta(days=7)
    assert "no-cache" in page["Cache-Control"] or "no-store" in page["Cache-Control"]
    listing = client.get(reverse("profile"))
    assert b"ci-pipeline" in listing.content and token.prefix.encode() in listing.content
    assert key.encode() not in listing.content  # never shown again
    assert api(client, key).status_code == 200
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.actor == developer and key not in str(event.data)


def test_bad_input_says_what_to_change(client, developer, settings):
    client.force_login(developer)
    page = client.post(
        reverse("profile"), {"name": "", "days": str(settings.API_TOKEN_MAX_DAYS + 1)}
    )
    assert page.status_code == 400
    assert b"Name the token" in page.content and b"Choose an expiry of 1 to" in page.content
    with pytest.raises(SpecError):
        api_token_create(actor=developer, name="x", days=0)


def test_the_owner_revokes_and_the_token_is_refused(client, developer):
    token, key = api_token_create(actor=developer, name="ci")
    client.force_login(developer)
    response = client.post(reverse("token-revoke", args=[token.pk]))
    assert response.status_code == 302
    client.logout()
    refused = api(client, key)
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Token"
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "api_token.revoked" in actions and "api_token.refused" in actions


def test_an_expired_token_is_refused(client, developer):
    token, key = api_token_create(actor=developer, name="ci", days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api(client, key).status_code == 401
    event = AuditEvent.objects.get(action="api_token.refused")
    assert event.data["reason"] == "expired"
    client.force_login(developer)
    assert b"expired" in client.get(reverse("profile")).content


def test_only_the_owner_or_an_admin_revokes(client, developer, teammate):
    token, key = api_token_create(actor=developer, name="ci")
    client.force_login(teammate)
    assert client.post(reverse("token-revoke", args=[token.pk])).status_code == 403
    with pytest.raises(Exception, match="owner or a platform admin"):
        api_token_revoke(actor=teammate, token=token)
    assert api(client, key).status_code == 200

    admin = User.objects.create_superuser("root", "root@example.com", "pw-for-tests")
    client.force_login(admin)
    changelist = reverse("admin:provisioning_apitoken_changelist")
    response = client.post(changelist, {"action": "revoke", "_selected_action": [token.pk]})
    assert response.status_code == 302
    client.logout()
    assert api(client, key).status_code == 401
    revoked = AuditEvent.objects.get(action="api_token.revoked")
    assert revoked.actor == admin and revoked.data["owner"] == developer.username


def test_seed_demo_prints_a_working_demo_token(db, client, settings, capsys):
    from django.core.management import call_command

    settings.DEBUG = True
    call_command("seed_demo")
    key = capsys.readouterr().out.split("Demo API token of dev (1 day; /profile/ lists it): ")[1]
    assert api(client, key.strip()).status_code == 200
