"""The user's own pages: API tokens (create one — its key is shown on that response only, never
stored or shown again — list yours, revoke any of yours) and which notifications they receive."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from provisioning.iam.spec import SpecError
from provisioning.models import ApiToken
from provisioning.notifications.changes import (
    notification_opt_outs,
    notification_preferences_set,
)
from provisioning.notifications.prefs import NotifyEvent
from provisioning.permissions import is_reviewer
from provisioning.services.tokens import api_token_create, api_token_revoke, api_tokens_of


@never_cache  # the page that shows a new key must not sit in any cache
@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    context: dict = {
        "default_days": settings.API_TOKEN_DEFAULT_DAYS,
        "max_days": settings.API_TOKEN_MAX_DAYS,
        "errors": {},
    }
    status = 200
    if request.method == "POST":
        try:
            days = int(request.POST.get("days") or settings.API_TOKEN_DEFAULT_DAYS)
        except ValueError:
            days = 0
        try:
            token, key = api_token_create(
                actor=request.user, name=request.POST.get("name", ""), days=days
            )
        except SpecError as exc:
            context["errors"] = exc.errors
            status = 400
        else:
            context["new_token"], context["new_key"] = token, key
    context["tokens"] = api_tokens_of(user=request.user)
    return render(request, "registration/profile.html", context, status=status)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk)
    if token.user_id != request.user.pk:
        raise PermissionDenied("This is not your token.")  # admins revoke others' in admin
    api_token_revoke(actor=request.user, token=token)
    messages.success(request, f"Token “{token.name}” ({token.prefix}…) is revoked.")
    return redirect("profile")


@login_required
@require_http_methods(["GET", "POST"])
def notification_preferences(request: HttpRequest) -> HttpResponse:
    """A checkbox per event: checked means "email me"; unchecking opts out."""
    if request.method == "POST":
        wanted = set(request.POST.getlist("receive"))
        notification_preferences_set(
            user=request.user, opted_out={e for e in NotifyEvent.values if e not in wanted}
        )
        messages.success(request, "Your notification choices were saved.")
        return redirect("notification-preferences")
    opted_out = notification_opt_outs(user=request.user)
    events = [
        {"value": value, "label": label, "receive": value not in opted_out}
        for value, label in NotifyEvent.choices
        if value != NotifyEvent.REVIEW_WAITING or is_reviewer(request.user)
    ]
    context = {"events": events, "has_email": bool(request.user.email)}
    return render(request, "provisioning/notification_preferences.html", context)
