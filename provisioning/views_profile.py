"""The user's own page: which notifications they receive."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from provisioning.notifications.changes import (
    notification_opt_outs,
    notification_preferences_set,
)
from provisioning.notifications.prefs import NotifyEvent
from provisioning.permissions import is_reviewer


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
