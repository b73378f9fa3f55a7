"""Webhook deliveries are an outbox: written in the transaction of the change they report, handed
to Celery after it commits, and swept again when that hand-over never happened. Deliveries go to
a real local HTTP receiver (tests/test_webhooks.py) with Celery run eagerly."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from provisioning.models import (
    ChangeStatus,
    Run,
    RunStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from provisioning.notifications.tasks import deliver_webhook, redispatch_webhooks
from provisioning.notifications.webhooks import (
    SIGNATURE_HEADER,
    Outcome,
    webhook_attempt,
    webhook_redispatch,
    webhook_verify,
)
from provisioning.services.changes import change_request_cancel
from provisioning.services.runs import run_finish
from tests import test_ui
from tests.test_webhooks import eager_celery, receiver  # noqa: F401 (fixtures)

change = test_ui.change


def subscribe(team, receiver, events, secret=None):  # noqa: F811
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    secret = secret or "outbox-secret"
    return WebhookSubscription.objects.create(team=team, url=url, events=events, secret=secret)


def age(seconds: int) -> None:
    """Every delivery written ``seconds`` ago (what the sweep looks at)."""
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(seconds=seconds))


def test_a_rolled_back_change_writes_no_delivery(developer, change, receiver):  # noqa: F811
    subscribe(change.microservice.team, receiver, ["change_request.status"])
    with pytest.raises(RuntimeError), transaction.atomic():
        change_request_cancel(actor=developer, change_request=change)
        assert WebhookDelivery.objects.count() == 1  # written with the change...
        raise RuntimeError("the caller's transaction fails after the transition")
    assert not WebhookDelivery.objects.exists()  # ...and gone with it
    change.refresh_from_db()
    assert change.status == ChangeStatus.DRAFT


def test_a_finished_run_writes_its_deliveries_with_its_status(change, cluster, receiver):  # noqa: F811
    subscribe(None, receiver, ["run.finished"])
    run = test_ui.plan(change, cluster, status=RunStatus.RUNNING)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert run_finish(run_id=run.pk, status=RunStatus.SUCCEEDED)
        assert WebhookDelivery.objects.get().payload["data"]["run"] == run.pk
        raise RuntimeError
    assert not WebhookDelivery.objects.exists()
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING


def test_an_event_whose_dispatch_was_lost_is_delivered_by_the_sweep(
    developer,
    change,
    receiver,  # noqa: F811
    eager_celery,  # noqa: F811
    django_capture_on_commit_callbacks,
    settings,
):
    receiver.fail = 0
    settings.WEBHOOK_REDISPATCH_AFTER = 120
    subscribe(change.microservice.team, receiver, ["change_request.status"], secret="team-secret")
    # The change commits; the hand-over to Celery queued for after the commit is lost (the
    # process died right after the commit): the callbacks are captured and never run.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        change_request_cancel(actor=developer, change_request=change)
    assert callbacks and receiver.received == []
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 0)

    assert redispatch_webhooks.delay().get() == []  # too recent: its message may still come
    age(121)
    assert redispatch_webhooks.delay().get() == [delivery.pk]
    [(headers, body)] = receiver.received
    assert webhook_verify(secret="team-secret", header=headers[SIGNATURE_HEADER], body=body)
    assert json.loads(body)["data"]["status"] == "cancelled"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 204)
    assert webhook_redispatch() == []  # delivered: nothing left to sweep


def test_a_late_original_message_does_not_deliver_again(
    developer,
    change,
    receiver,  # noqa: F811
    eager_celery,  # noqa: F811
):
    receiver.fail = 0
    subscribe(change.microservice.team, receiver, ["change_request.status"])
    change_request_cancel(actor=developer, change_request=change)  # dispatch never runs here
    delivery = WebhookDelivery.objects.get()
    assert webhook_attempt(delivery_id=delivery.pk, attempt=0) == Outcome.DELIVERED
    # The first attempt's message, sent again (by a second sweep, or the original arriving
    # late): the attempt was claimed already, so nothing is posted.
    assert webhook_attempt(delivery_id=delivery.pk, attempt=0) == Outcome.SKIPPED
    deliver_webhook.delay(delivery.pk, 0)
    assert len(receiver.received) == 1


def test_a_retry_lost_with_its_worker_is_swept_as_the_next_attempt(
    team,
    receiver,  # noqa: F811
    eager_celery,  # noqa: F811
):
    receiver.fail = 1
    hook = subscribe(team, receiver, ["drift.found"])
    delivery = WebhookDelivery.objects.create(subscription=hook, event="drift.found", payload={})
    # The first attempt fails; its retry (a countdown held by a worker) is lost with the worker.
    assert webhook_attempt(delivery_id=delivery.pk, attempt=0) == Outcome.RETRY
    assert webhook_redispatch() == []  # its retry is not due yet
    WebhookDelivery.objects.update(last_attempt_at=timezone.now() - timedelta(hours=1))
    assert webhook_redispatch() == [delivery.pk]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_deliver_once(receiver, eager_celery):  # noqa: F811
    from tests.factories import TeamFactory

    receiver.fail = 0
    hook = subscribe(TeamFactory(name="payments"), receiver, ["run.finished"])
    deliveries = [
        WebhookDelivery.objects.create(subscription=hook, event="run.finished", payload={"n": n})
        for n in range(5)
    ]
    age(3600)
    start = threading.Barrier(2)
    swept: list[list[int]] = []

    def sweep() -> None:
        start.wait()
        try:
            swept.append(webhook_redispatch())
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(swept) == 2
    first, second = swept
    assert not set(first) & set(second)  # each claimed by one sweep only
    assert sorted(first + second) == sorted(d.pk for d in deliveries)
    posted = sorted(json.loads(body)["id"] for _, body in receiver.received)
    assert posted == sorted(d.pk for d in deliveries)  # each once, whoever claimed it
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("delivered", 1)}


@pytest.fixture
def dead_broker():
    """Celery pointed at a port nobody listens on: every hand-over fails (and is logged)."""
    from portal.celery import app

    def point_at(url: str) -> None:
        app.conf.broker_url = url
        app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.broker_url
    point_at("redis://127.0.0.1:9/0")
    yield
    point_at(previous)


def test_a_delivery_the_broker_cannot_take_is_swept_once_per_interval(
    team,
    receiver,  # noqa: F811
    dead_broker,
    settings,
):
    settings.WEBHOOK_REDISPATCH_AFTER = 120
    hook = subscribe(team, receiver, ["drift.found"])
    delivery = WebhookDelivery.objects.create(subscription=hook, event="drift.found", payload={})
    age(121)
    assert webhook_redispatch() == [delivery.pk]  # claimed; the hand-over fails, it stays pending
    assert webhook_redispatch() == []  # not again before WEBHOOK_REDISPATCH_AFTER has passed
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    WebhookDelivery.objects.update(redispatched_at=timezone.now() - timedelta(seconds=121))
    assert webhook_redispatch() == [delivery.pk]
    assert receiver.received == []
