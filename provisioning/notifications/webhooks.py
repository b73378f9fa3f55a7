"""Webhooks: events for pipelines, signed, delivered by Celery with retries and a delivery log.

An outbox: services call ``webhook_emit`` inside the transaction of the state change it reports,
and the delivery rows are written in that same transaction, so a rolled-back change sends nothing
and a committed one cannot lose its event. The rows are handed to Celery once the transaction
commits; a process that dies between the commit and that hand-over (or a broker that drops the
message) leaves them pending, and ``webhook_redispatch`` (a beat task) sends them again after
WEBHOOK_REDISPATCH_AFTER seconds. The sweep claims each delivery by a conditional UPDATE, and so
does every attempt (on the attempt count), so neither two sweeps nor a sweep and a late original
message deliver one attempt twice.

Signature (docs/api.md): ``X-IRSA-Signature: t=<unix time>,v1=<hex HMAC-SHA256>`` over
``"<t>.<raw body>"`` with the subscription's secret. Receivers recompute it and refuse old ``t``
(replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from datetime import timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from provisioning.notifications.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-IRSA-Signature"
MAX_ATTEMPTS = 6
TIMEOUT_SECONDS = 10
RESPONSE_KEPT_CHARS = 2000
MAX_RETRY_DELAY = 600  # seconds
REDISPATCH_BATCH = 500  # deliveries per sweep; the next sweep takes the rest


def webhook_secret_new() -> str:
    return secrets.token_urlsafe(32)


def webhook_sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def webhook_verify(*, secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """What a receiver does (used by the tests and documented for receivers)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = webhook_sign(secret=secret, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected, header)


def webhook_emit(*, event: WebhookEvent, team_id: int | None, data: dict[str, Any]) -> None:
    """Write ``event``'s deliveries (the team's subscriptions and the admin-wide ones) in the
    caller's transaction; they are handed to Celery once it commits.

    Call it inside the ``transaction.atomic()`` that makes the change: outside one, the change
    and its deliveries commit apart and a crash between them loses the event.
    """
    candidates = WebhookSubscription.objects.filter(active=True).filter(
        Q(team__isnull=True) | Q(team_id=team_id)
    )
    # events is a JSON list; matched in Python so SQLite (make run's quick mode) works too
    targets = [pk for pk, events in candidates.values_list("pk", "events") if event in events]
    if not targets:
        return
    payload = {"event": str(event), "sent_at": timezone.now().isoformat(), "data": data}
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(subscription_id=pk, event=str(event), payload=payload) for pk in targets]
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: webhook_dispatch(delivery_ids=ids))


def webhook_dispatch(*, delivery_ids: list[int], attempt: int = 0) -> None:
    """Hand deliveries to Celery; a broker that is down leaves them pending for the sweep."""
    from provisioning.notifications.tasks import deliver_webhook

    for delivery_id in delivery_ids:
        try:
            deliver_webhook.delay(delivery_id, attempt)
        except Exception:  # kombu raises several types; the row stays pending, swept later
            logger.exception("webhook delivery %s could not be enqueued", delivery_id)


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # the receiver did not answer 2xx; attempts remain
    FAILED = "failed"  # the last attempt failed too
    SKIPPED = "skipped"  # another attempt claimed it, or it is no longer pending


def webhook_attempt(*, delivery_id: int, attempt: int = 0) -> Outcome:
    """POST the delivery once, as its attempt number ``attempt`` (0 for the first), and record it.

    The attempt is claimed first (attempts: ``attempt`` → ``attempt + 1``, only while pending):
    a duplicate message for the same attempt — a sweep racing another sweep or a late original —
    finds nothing to claim and sends nothing.
    """
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, attempts=attempt
    ).update(attempts=attempt + 1, last_attempt_at=timezone.now())
    if not claimed:
        return Outcome.SKIPPED
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    code, text = _post(_signed_request(delivery))
    if code is not None and 200 <= code < 300:
        outcome = Outcome.DELIVERED
    else:
        outcome = Outcome.FAILED if attempt + 1 >= MAX_ATTEMPTS else Outcome.RETRY
    status = DeliveryStatus.PENDING if outcome == Outcome.RETRY else DeliveryStatus(outcome.value)
    WebhookDelivery.objects.filter(pk=delivery_id, attempts=attempt + 1).update(
        status=status,
        last_status_code=code,
        last_response=text[:RESPONSE_KEPT_CHARS],
        last_attempt_at=timezone.now(),
    )
    return outcome


def _signed_request(delivery: WebhookDelivery) -> urllib.request.Request:
    body = json.dumps({"id": delivery.pk, **delivery.payload}, sort_keys=True).encode()
    timestamp = int(time.time())
    return urllib.request.Request(  # noqa: S310 (the URL field only accepts http/https)
        delivery.subscription.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "irsa-portal-webhooks",
            "X-IRSA-Event": delivery.event,
            "X-IRSA-Delivery": str(delivery.pk),
            SIGNATURE_HEADER: webhook_sign(
                secret=delivery.subscription.secret, timestamp=timestamp, body=body
            ),
        },
    )


def webhook_retry_delay(*, attempt: int) -> int:
    """Seconds before the attempt after ``attempt``: 1x, 2x, 4x ... the base, at most 10 min."""
    return min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2**attempt, MAX_RETRY_DELAY)


def webhook_redispatch(*, limit: int = REDISPATCH_BATCH) -> list[int]:
    """The sweep: pending deliveries nobody is working on, handed to Celery again; returns them.

    Never attempted WEBHOOK_REDISPATCH_AFTER seconds after they were written (the process died
    between commit and hand-over, or the broker lost the message), or whose next retry is
    overdue by as much (a worker restarted while holding the retry). Each is claimed by a
    conditional UPDATE of ``redispatched_at`` — two sweeps never both send one, and one stuck
    behind a long queue is sent again at most once per WEBHOOK_REDISPATCH_AFTER — and goes out
    as its next attempt number, which only one attempt can claim.
    """
    now = timezone.now()
    grace = timedelta(seconds=settings.WEBHOOK_REDISPATCH_AFTER)
    retry_overdue = timedelta(seconds=MAX_RETRY_DELAY + TIMEOUT_SECONDS) + grace
    stalled = (
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
        .filter(
            Q(attempts=0, created_at__lt=now - grace)
            | Q(attempts__gt=0, last_attempt_at__lt=now - retry_overdue)
        )
        .filter(Q(redispatched_at__isnull=True) | Q(redispatched_at__lt=now - grace))
    )
    rows = list(stalled.order_by("created_at", "pk").values_list("pk", "attempts")[:limit])
    claimed = [
        (pk, attempts)
        for pk, attempts in rows
        if stalled.filter(pk=pk, attempts=attempts).update(redispatched_at=now)
    ]
    for attempts in sorted({a for _, a in claimed}):
        webhook_dispatch(delivery_ids=[pk for pk, a in claimed if a == attempts], attempt=attempts)
    return [pk for pk, _ in claimed]


def _post(request: urllib.request.Request) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            return answer.status, answer.read(RESPONSE_KEPT_CHARS).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(RESPONSE_KEPT_CHARS).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def webhook_change_request_status(*, change: Any, status: str) -> None:
    """``change_request.status``: the request moved to ``status`` (call inside its transaction)."""
    webhook_emit(
        event=WebhookEvent.CHANGE_REQUEST_STATUS,
        team_id=change.microservice.team_id,
        data={
            "change_request": change.pk,
            "microservice": change.microservice.name,
            "kind": change.kind,
            "status": str(status),
        },
    )


def webhook_run_finished(*, run: Any) -> None:
    """``run.finished`` for every run; ``drift.found`` too for a drift check that found some."""
    microservice = run.workspace.microservice
    data = {
        "run": run.pk,
        "kind": run.kind,
        "status": run.status,
        "microservice": microservice.name,
        "cluster": run.workspace.cluster.name,
        "change_request": run.change_request_id,
        "has_changes": run.has_changes,
    }
    webhook_emit(event=WebhookEvent.RUN_FINISHED, team_id=microservice.team_id, data=data)
    if run.kind == "drift" and run.status == "succeeded" and run.has_changes:
        webhook_emit(event=WebhookEvent.DRIFT_FOUND, team_id=microservice.team_id, data=data)


def webhook_verification_failed(*, workspace: Any, failing: list[dict[str, Any]]) -> None:
    webhook_emit(
        event=WebhookEvent.VERIFICATION_FAILED,
        team_id=workspace.microservice.team_id,
        data={
            "microservice": workspace.microservice.name,
            "cluster": workspace.cluster.name,
            "failing": failing[:20],
        },
    )
