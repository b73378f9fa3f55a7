"""Emails (and an optional Slack-compatible post) about change requests: reviewers hear that a
request waits for them, requesters that theirs was planned, approved, rejected, applied or failed.

Services call ``notify_change_request_status`` at the transition; the messages are built and
enqueued once the transaction commits, so nobody hears of a change that was rolled back, and a
request auto-approved right after planning does not ask reviewers for a review.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from provisioning.models import ChangeRequest, ChangeStatus
from provisioning.notifications.prefs import NotificationOptOut, NotifyEvent
from provisioning.permissions import SECURITY_GROUP

logger = logging.getLogger(__name__)

# A change request's new status → what its requester is told.
REQUESTER_EVENTS = {
    ChangeStatus.PLANNED: NotifyEvent.PLANNED,
    ChangeStatus.APPROVED: NotifyEvent.APPROVED,
    ChangeStatus.REJECTED: NotifyEvent.REJECTED,
    ChangeStatus.APPLIED: NotifyEvent.APPLIED,
    ChangeStatus.FAILED: NotifyEvent.FAILED,
    "plan_failed": NotifyEvent.FAILED,
}
_SENTENCES = {
    NotifyEvent.PLANNED: "was planned and waits for a security review",
    NotifyEvent.APPROVED: "was approved; its apply is queued",
    NotifyEvent.REJECTED: "was rejected",
    NotifyEvent.APPLIED: "was applied",
    NotifyEvent.FAILED: "failed",
}


def notify_change_request_status(*, change: ChangeRequest, status: str) -> None:
    """Called by the services when ``change`` moved to ``status`` (or "plan_failed")."""
    if status not in REQUESTER_EVENTS:
        return
    # Nothing is scheduled when nobody can hear: only a planned request concerns reviewers.
    nobody = not change.created_by.email and not settings.NOTIFY_SLACK_WEBHOOK_URL
    if status != ChangeStatus.PLANNED and nobody:
        return
    change_id = change.pk
    transaction.on_commit(lambda: _notify_after_commit(change_id, str(status)))


def change_request_url(change: ChangeRequest) -> str:
    path = reverse("change-request-detail", args=[change.pk])
    return f"{settings.PORTAL_BASE_URL}{path}"


def _notify_after_commit(change_id: int, status: str) -> None:
    try:
        change = ChangeRequest.objects.select_related("microservice", "created_by").get(
            pk=change_id
        )
        messages = _messages(change, status)
    except Exception:  # a notification never breaks the transition that already committed
        logger.exception("notifications for change request #%s could not be built", change_id)
        return
    for subject, body, recipient in messages:
        _enqueue_email(subject, body, recipient)
    if settings.NOTIFY_SLACK_WEBHOOK_URL:
        subject, _body = _requester_message(change, REQUESTER_EVENTS[status])
        _enqueue_slack(subject + "\n" + change_request_url(change))


def _messages(change: ChangeRequest, status: str) -> list[tuple[str, str, str]]:
    event = REQUESTER_EVENTS[status]
    out = []
    requester = change.created_by
    if requester.email and not _opted_out(requester.pk, event):
        out.append((*_requester_message(change, event), requester.email))
    # Still planned after commit: not auto-approved, so a human must look.
    if status == ChangeStatus.PLANNED and change.status == ChangeStatus.PLANNED:
        for email in _reviewer_emails(exclude_user_id=requester.pk):
            out.append((*_reviewer_message(change), email))
    return out


def _requester_message(change: ChangeRequest, event: NotifyEvent) -> tuple[str, str]:
    what = f"Change request #{change.pk} ({change.get_kind_display().lower()} of " + (
        f"{change.microservice.name})"
    )
    subject = f"[IRSA portal] {what} {_SENTENCES[event]}"
    lines = [f"{what} {_SENTENCES[event]}."]
    if event == NotifyEvent.REJECTED:
        review = change.reviews.order_by("-pk").first()
        if review is not None and review.comment:
            lines += ["", "The reviewer said:", review.comment]
    lines += ["", f"Open it: {change_request_url(change)}", "", _footer()]
    return subject, "\n".join(lines)


def _reviewer_message(change: ChangeRequest) -> tuple[str, str]:
    subject = (
        f"[IRSA portal] Review waiting: change request #{change.pk} of {change.microservice.name}"
    )
    lines = [
        f"{change.created_by} asks for a {change.get_kind_display().lower()} of "
        f"{change.microservice.name}; its plans are ready for your review.",
        "",
        f"Justification: {change.justification}",
        "",
        f"Review it: {change_request_url(change)}",
        "",
        _footer(),
    ]
    return subject, "\n".join(lines)


def _footer() -> str:
    path = reverse("notification-preferences")
    return f"Choose which notifications you get: {settings.PORTAL_BASE_URL}{path}"


def _opted_out(user_id: int, event: NotifyEvent) -> bool:
    return NotificationOptOut.objects.filter(user_id=user_id, event=event).exists()


def _reviewer_emails(*, exclude_user_id: int) -> list[str]:
    """Security reviewers with an address who did not opt out, plus SECURITY_NOTIFY_EMAILS."""
    opted_out = NotificationOptOut.objects.filter(event=NotifyEvent.REVIEW_WAITING).values(
        "user_id"
    )
    members = (
        get_user_model()
        .objects.filter(groups__name=SECURITY_GROUP, is_active=True)
        .exclude(email="")
        .exclude(pk=exclude_user_id)
        .exclude(pk__in=opted_out)
        .values_list("email", flat=True)
    )
    return sorted({*members, *settings.SECURITY_NOTIFY_EMAILS})


def _enqueue_email(subject: str, body: str, recipient: str) -> None:
    from provisioning.notifications.tasks import send_email

    try:
        send_email.delay(subject, body, [recipient])
    except Exception:  # kombu raises several types; the audit trail still has the transition
        logger.exception("a change-request email could not be enqueued")


def _enqueue_slack(text: str) -> None:
    from provisioning.notifications.tasks import post_slack

    try:
        post_slack.delay(text)
    except Exception:
        logger.exception("a Slack notification could not be enqueued")


def notification_opt_outs(*, user: Any) -> set[str]:
    return set(NotificationOptOut.objects.filter(user=user).values_list("event", flat=True))


def notification_preferences_set(*, user: Any, opted_out: set[str]) -> None:
    """Replace the user's opt-outs with ``opted_out`` (event values), in one transaction."""
    valid = {e for e in opted_out if e in NotifyEvent.values}
    with transaction.atomic():
        NotificationOptOut.objects.filter(user=user).exclude(event__in=valid).delete()
        have = notification_opt_outs(user=user)
        NotificationOptOut.objects.bulk_create(
            [NotificationOptOut(user=user, event=e) for e in sorted(valid - have)]
        )
