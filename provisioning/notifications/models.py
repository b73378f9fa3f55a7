"""Webhook subscriptions and their delivery log.

The signing secret is stored in clear text: HMAC needs the same secret on both sides, so unlike a
password it cannot be hashed. It is shown once when the subscription is created, never returned
by a read, never logged; rotating means creating a new subscription. Whoever reads the database
can forge events to the receiver, which is the documented trade-off of HMAC signing.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class WebhookEvent(models.TextChoices):
    CHANGE_REQUEST_STATUS = "change_request.status", "A change request changed status"
    RUN_FINISHED = "run.finished", "A run finished"
    VERIFICATION_FAILED = "verification.failed", "A live verification failed"
    DRIFT_FOUND = "drift.found", "Drift was found"


class WebhookSubscription(models.Model):
    """A URL that receives the chosen events of one team (or, with no team, of every team)."""

    team = models.ForeignKey(
        "provisioning.Team",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhooks",
    )
    url = models.URLField(max_length=1024)
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=128, editable=False)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "provisioning"
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.team or 'all teams'} → {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (retries exhausted)"


class WebhookDelivery(models.Model):
    """One event for one subscription; attempts and the last response are kept for the log."""

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=64, choices=WebhookEvent.choices)
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True)  # first 2 KB of the receiver's answer or error
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # When beat's sweep last handed it to Celery again (claimed by a conditional UPDATE).
    redispatched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        app_label = "provisioning"
        ordering = ["-created_at", "-id"]
        indexes = [
            # The redispatch sweep reads only pending rows, a handful among the whole log.
            models.Index(
                fields=["created_at"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription_id} ({self.status})"
