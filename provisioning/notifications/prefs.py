"""What each user chose not to be told. A row is an opt-out: by default everyone hears of
everything that concerns them, so a new event type reaches people until they say otherwise."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class NotifyEvent(models.TextChoices):
    REVIEW_WAITING = "review_waiting", "A change request waits for a security review (reviewers)"
    PLANNED = "planned", "My change request was planned"
    APPROVED = "approved", "My change request was approved"
    REJECTED = "rejected", "My change request was rejected"
    APPLIED = "applied", "My change request was applied"
    FAILED = "failed", "My change request failed (plan or apply)"


class NotificationOptOut(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_opt_outs"
    )
    event = models.CharField(max_length=32, choices=NotifyEvent.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "provisioning"
        constraints = [
            models.UniqueConstraint(fields=["user", "event"], name="one_opt_out_per_user_event"),
        ]

    def __str__(self) -> str:
        return f"{self.user} opted out of {self.event}"
