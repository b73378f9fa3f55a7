"""API tokens with a lifecycle: created with a name and an expiry, shown once, hashed at rest,
listed and revoked by their owner (platform admins revoke anyone's); every event is audited.

A key is ``irsa_`` + 43 URL-safe characters (256 random bits). Only its sha256 is stored, with
the first characters (``prefix``) so its owner can tell tokens apart in the list.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.utils import timezone

from provisioning.iam.spec import SpecError
from provisioning.models import ApiToken
from provisioning.services.audit import audit_record
from provisioning.validation import control_character, control_character_message

KEY_PREFIX = "irsa_"
SHOWN_PREFIX_LENGTH = 12
# last_used_at is refreshed at most this often: not one UPDATE per API request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, actor: Any, name: str, days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for ``actor``; returns it and its key, which is never shown again."""
    name = (name or "").strip()
    days = settings.API_TOKEN_DEFAULT_DAYS if days is None else days
    errors: dict[str, list[str]] = {}
    if not name or len(name) > 100:
        errors["name"] = ["Name the token (1-100 characters), e.g. after the pipeline using it."]
    elif code_point := control_character(name):
        errors["name"] = [control_character_message(code_point, what="name")]
    if not 1 <= days <= settings.API_TOKEN_MAX_DAYS:
        errors["days"] = [f"Choose an expiry of 1 to {settings.API_TOKEN_MAX_DAYS} days."]
    if errors:
        raise SpecError(errors)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=actor,
        name=name,
        prefix=key[:SHOWN_PREFIX_LENGTH],
        digest=token_digest(key),
        expires_at=timezone.now() + timedelta(days=days),
    )
    audit_record(
        actor=actor,
        action="api_token.created",
        obj=token,
        data={"name": name, "prefix": token.prefix, "expires_at": token.expires_at.isoformat()},
    )
    return token, key


def can_revoke(user: Any, token: ApiToken) -> bool:
    return bool(user.is_authenticated and (token.user_id == user.pk or user.is_superuser))


def api_token_revoke(*, actor: Any, token: ApiToken) -> bool:
    """Revoke at once; False when it was already revoked (nothing changes, nothing audited)."""
    if not can_revoke(actor, token):
        raise PermissionDenied("Only the token's owner or a platform admin may revoke it.")
    done = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=actor
    )
    if done:
        audit_record(
            actor=actor,
            action="api_token.revoked",
            obj=token,
            data={"name": token.name, "prefix": token.prefix, "owner": token.user.get_username()},
        )
    return bool(done)


def api_token_authenticate(*, key: str) -> Any | None:
    """The user a valid key belongs to, or None. A revoked or expired token's use is audited."""
    if not key.startswith(KEY_PREFIX):
        return None
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(key)).first()
    if token is None:
        return None
    now = timezone.now()
    refused = "revoked" if token.revoked_at else ("expired" if token.expires_at <= now else "")
    if refused or not token.user.is_active:
        audit_record(
            actor=None,
            action="api_token.refused",
            obj=token,
            data={"prefix": token.prefix, "reason": refused or "inactive user"},
        )
        return None
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def api_tokens_of(*, user: Any) -> QuerySet[ApiToken]:
    """Selector: the user's tokens, active ones first, newest first."""
    inactive = Q(revoked_at__isnull=False) | Q(expires_at__lte=timezone.now())
    return (
        ApiToken.objects.filter(user=user)
        .annotate(inactive=ExpressionWrapper(inactive, output_field=BooleanField()))
        .order_by("inactive", "-created_at")
    )
