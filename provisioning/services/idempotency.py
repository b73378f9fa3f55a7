"""Stored answers of POSTs sent with an ``Idempotency-Key`` (provisioning/api/idempotency.py) are
only needed while a client may still retry: past IDEMPOTENCY_KEY_TTL they are deleted."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from provisioning.api.models import IdempotencyRecord

PURGE_BATCH = 1000


def idempotency_records_purge(*, batch_size: int = PURGE_BATCH) -> int:
    """Delete the records older than IDEMPOTENCY_KEY_TTL, ``batch_size`` rows per statement (short
    locks, however many piled up); returns how many went."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL)
    expired = IdempotencyRecord.objects.filter(created_at__lt=cutoff).order_by("created_at")
    deleted = 0
    while True:
        batch = list(expired.values_list("pk", flat=True)[:batch_size])
        if not batch:
            return deleted
        deleted += IdempotencyRecord.objects.filter(pk__in=batch).delete()[0]
        if len(batch) < batch_size:
            return deleted
