"""Webhooks: events for pipelines, signed, delivered by Celery with retries and a delivery log.

Services call ``webhook_emit`` inside their transaction; the deliveries are created and enqueued
only after it commits, so a receiver never hears of a change that was rolled back.

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
from typing import Any

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
    """Queue ``event`` for the team's subscriptions and the admin-wide ones, after commit.

    Subscribers are chosen now (one query; nothing is scheduled when nobody listens) and the
    deliveries are written and enqueued once the caller's transaction commits.
    """
    candidates = WebhookSubscription.objects.filter(active=True).filter(
        Q(team__isnull=True) | Q(team_id=team_id)
    )
    # events is a JSON list; matched in Python so SQLite (make run's quick mode) works too
    targets = [pk for pk, events in candidates.values_list("pk", "events") if event in events]
    if not targets:
        return
    payload = {"event": str(event), "sent_at": timezone.now().isoformat(), "data": data}
    transaction.on_commit(lambda: _deliver_later(str(event), targets, payload))


def _deliver_later(event: str, targets: list[int], payload: dict[str, Any]) -> None:
    from provisioning.notifications.tasks import deliver_webhook

    for subscription_id in targets:
        delivery = WebhookDelivery.objects.create(
            subscription_id=subscription_id, event=event, payload=payload
        )
        try:
            deliver_webhook.delay(delivery.pk)
        except Exception:  # broker down: the row stays pending, visible in the delivery log
            logger.exception("webhook delivery %s could not be enqueued", delivery.pk)


def webhook_attempt(*, delivery_id: int) -> bool:
    """POST the delivery once; records the attempt; True when the receiver answered 2xx."""
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    body = json.dumps({"id": delivery.pk, **delivery.payload}, sort_keys=True).encode()
    timestamp = int(time.time())
    request = urllib.request.Request(  # noqa: S310 (the URL field only accepts http/https)
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
    code, text = _post(request)
    ok = code is not None and 200 <= code < 300
    attempts = delivery.attempts + 1
    if ok:
        status = DeliveryStatus.DELIVERED
    else:
        status = DeliveryStatus.FAILED if attempts >= MAX_ATTEMPTS else DeliveryStatus.PENDING
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=attempts,
        status=status,
        last_status_code=code,
        last_response=text[:RESPONSE_KEPT_CHARS],
        last_attempt_at=timezone.now(),
    )
    return ok


def _post(request: urllib.request.Request) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            return answer.status, answer.read(RESPONSE_KEPT_CHARS).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(RESPONSE_KEPT_CHARS).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def webhook_change_request_status(*, change: Any, status: str) -> None:
    """``change_request.status``: the request moved to ``status`` (sent after commit)."""
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
