"""The doors around the portal's rules: login lockouts (django-axes) are audited, and API clients
that keep presenting bad tokens are slowed down with 429 before they can guess one.

DRF checks its throttles only after authentication succeeded, so a client sending token after
bad token would never meet one: ``ApiTokenAuthentication`` counts failed token
authentications per client address (in the cache) and answers 429 with ``Retry-After`` once
``API_FAILED_AUTH_LIMIT`` failures fell within ``API_FAILED_AUTH_WINDOW`` seconds.
"""

from __future__ import annotations

import math
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest
from django.shortcuts import render
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request

from provisioning.models import AuditEvent

FAILED_AUTH_KEY = "failed-token-auth:{address}"


def client_address(request: Any) -> str:
    """REMOTE_ADDR: behind a TLS proxy, the proxy sets it right (see docs/deploy.md)."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def failed_auth_wait(*, address: str, now: float | None = None) -> float:
    """Seconds this address must wait before its next token is even looked at (0: go ahead)."""
    now = time.time() if now is None else now
    window = settings.API_FAILED_AUTH_WINDOW
    recent = [t for t in cache.get(FAILED_AUTH_KEY.format(address=address), []) if t > now - window]
    if len(recent) < settings.API_FAILED_AUTH_LIMIT:
        return 0.0
    return max(recent[0] + window - now, 1.0)


def failed_auth_record(*, address: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    key = FAILED_AUTH_KEY.format(address=address)
    window = settings.API_FAILED_AUTH_WINDOW
    recent = [t for t in cache.get(key, []) if t > now - window]
    cache.set(key, [*recent, now], timeout=window)


class ApiTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>`` with the portal's hashed, expiring tokens
    (provisioning.services.tokens); refuses (429) a client address after too many bad ones."""

    def authenticate_credentials(self, key: str) -> tuple[Any, None]:
        from provisioning.services.tokens import api_token_authenticate

        user = api_token_authenticate(key=key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return user, None

    def authenticate(self, request: Request) -> Any:
        address = client_address(request)
        wait = failed_auth_wait(address=address)
        if wait:
            raise exceptions.Throttled(
                wait=math.ceil(wait), detail="Too many failed token authentications."
            )
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            failed_auth_record(address=address)
            raise


def lockout_response(request: HttpRequest, original_response: Any, credentials: Any) -> Any:
    """A locked-out login (AXES_LOCKOUT_CALLABLE): 429, the page saying why, and Retry-After
    (the whole cool-off: the lockout may have begun a moment ago)."""
    from axes.helpers import get_cool_off

    cool_off = get_cool_off(request)
    response = render(
        request, "registration/locked_out.html", {"cooloff_timedelta": cool_off}, status=429
    )
    if cool_off:
        response["Retry-After"] = str(math.ceil(cool_off.total_seconds()))
    return response


def _audit_lockout(*, username: str, address: str) -> None:
    user = get_user_model().objects.filter(username=username).first()
    AuditEvent.objects.create(
        actor=None,
        actor_name="system",
        action="auth.locked_out",
        object_type="auth.user",
        object_id=str(user.pk) if user else "",
        data={"username": username[:150], "ip_address": address},
    )


try:  # axes is in INSTALLED_APPS wherever the portal runs; the import only fails outside it
    from axes.signals import user_locked_out
except ImportError:  # pragma: no cover
    user_locked_out = None

if user_locked_out is not None:

    @receiver(user_locked_out, dispatch_uid="provisioning.audit_lockout")
    def audit_lockout(sender: Any, request: Any, username: str, ip_address: str, **_: Any) -> None:
        _audit_lockout(username=username or "", address=ip_address or "")
