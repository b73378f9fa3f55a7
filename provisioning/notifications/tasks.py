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
