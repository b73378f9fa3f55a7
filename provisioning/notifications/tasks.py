"""Delivery tasks: JSON in, retried on errors that are known to be transient."""

from __future__ import annotations

import smtplib

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail


@shared_task(
    name="notifications.send_email",
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=6,
    ignore_result=True,
    time_limit=60,
    soft_time_limit=50,
)
def send_email(subject: str, body: str, recipients: list[str]) -> int:
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)


class WebhookNotDelivered(Exception):
    """The receiver did not answer 2xx; Celery retries with back-off."""


@shared_task(
    name="notifications.deliver_webhook",
    bind=True,
    max_retries=None,  # the delivery's own attempt count stops it (webhooks.MAX_ATTEMPTS)
    ignore_result=True,
    time_limit=60,
    soft_time_limit=50,
)
def deliver_webhook(self, delivery_id: int, attempt: int = 0) -> None:
    """Attempt number ``attempt`` of a delivery; the next one after 1x, 2x, 4x ... the base
    (WEBHOOK_RETRY_BASE_SECONDS, 10 s), capped at 10 minutes."""
    from provisioning.notifications.webhooks import (
        Outcome,
        webhook_attempt,
        webhook_retry_delay,
    )

    if webhook_attempt(delivery_id=delivery_id, attempt=attempt) != Outcome.RETRY:
        return
    raise self.retry(
        args=(delivery_id, attempt + 1),
        countdown=webhook_retry_delay(attempt=attempt),
        exc=WebhookNotDelivered(delivery_id),
    )


@shared_task(
    name="notifications.redispatch_webhooks",
    ignore_result=True,
    time_limit=120,
    soft_time_limit=100,
)
def redispatch_webhooks() -> list[int]:
    """Beat: pending deliveries whose message never came (webhooks.webhook_redispatch)."""
    from provisioning.notifications.webhooks import webhook_redispatch

    return webhook_redispatch()


class SlackNotDelivered(Exception):
    """The incoming webhook did not answer 2xx; Celery retries with back-off."""


@shared_task(
    name="notifications.post_slack",
    autoretry_for=(SlackNotDelivered, OSError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
    ignore_result=True,
    time_limit=30,
    soft_time_limit=20,
)
def post_slack(text: str) -> None:
    """Post ``{"text": ...}`` to NOTIFY_SLACK_WEBHOOK_URL (Slack, Mattermost, Rocket.Chat...)."""
    import json
    import urllib.error
    import urllib.request

    url = settings.NOTIFY_SLACK_WEBHOOK_URL
    if not url.startswith(("https://", "http://")):
        return  # unset (or not a URL): nothing to post to
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked just above)
        url,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (admin-set URL)
            if not 200 <= response.status < 300:
                raise SlackNotDelivered(response.status)
    except urllib.error.HTTPError as exc:
        raise SlackNotDelivered(exc.code) from None
