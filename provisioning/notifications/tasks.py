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
    max_retries=5,  # six attempts in all (webhooks.MAX_ATTEMPTS)
    ignore_result=True,
    time_limit=60,
    soft_time_limit=50,
)
def deliver_webhook(self, delivery_id: int) -> None:
    from provisioning.notifications.webhooks import webhook_attempt

    if webhook_attempt(delivery_id=delivery_id):
        return
    if self.request.retries < self.max_retries:
        # 10 s, 20 s, 40 s ... (WEBHOOK_RETRY_BASE_SECONDS), capped at 10 minutes
        countdown = min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2**self.request.retries, 600)
        raise self.retry(countdown=countdown, exc=WebhookNotDelivered(delivery_id))


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
