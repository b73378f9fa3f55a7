"""Rows the API keeps for its own contract (not domain state): stored responses of POSTs sent
with an ``Idempotency-Key``, so a pipeline that retries after a timeout gets the first answer."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class IdempotencyRecord(models.Model):
    """The first 2xx response to ``POST <path>`` by ``user`` with ``key``; kept
    IDEMPOTENCY_KEY_TTL seconds (24 hours), then purged by beat.

    ``body_sha256`` detects a key reused for a different request (refused with 422), so a client
    bug cannot silently replay an unrelated answer.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512)
    body_sha256 = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        app_label = "provisioning"
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
