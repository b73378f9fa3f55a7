"""Webhooks: subscriptions over the API across personas, the signature, delivery to a real local
HTTP receiver that fails first (Celery's retry, run eagerly), and the delivery log."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal.celery import app
from provisioning.models import WebhookDelivery, WebhookSubscription
from provisioning.notifications.webhooks import (
    SIGNATURE_HEADER,
    webhook_emit,
    webhook_sign,
    webhook_verify,
)
from provisioning.services.changes import change_request_cancel
from tests import test_ui
from tests.factories import UserFactory
from tests.refusals import assert_token_refused, token

change = test_ui.change
URL = "/api/v1/webhooks/"
JSON = {"content_type": "application/json"}


def post(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


@pytest.fixture
def staff(db):
    return UserFactory(username="sam", is_staff=True)


class Receiver(BaseHTTPRequestHandler):
    """Answers 500 to the first ``fail`` requests, then 204; keeps what it got."""

    fail: int

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.headers, body))  # type: ignore[attr-defined]
        failing = len(self.server.received) <= self.server.fail  # type: ignore[attr-defined]
        self.send_response(500 if failing else 204)
        self.end_headers()
        if failing:
            self.wfile.write(b"receiver down")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received, server.fail = [], 1  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def eager_celery():
    """Tasks run in-process (retries included) instead of going to the shared broker."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


class TestSubscriptions:
    def test_personas(
        self, client, developer, teammate, outsider, reviewer, staff, expired_token, revoked_token
    ):
        hook = {"team": "payments", "url": "http://127.0.0.1:9/h", "events": ["run.finished"]}
        assert post(client, URL, hook).status_code == 401
        for key in (expired_token, revoked_token):
            assert_token_refused(client.post(URL, json.dumps(hook), **JSON, **token(key)))
            assert_token_refused(client.get(URL, **token(key)))
        assert not WebhookSubscription.objects.exists()
        client.force_login(developer)
        created = post(client, URL, hook)
        assert created.status_code == 201 and len(created.json()["secret"]) >= 32
        pk = created.json()["id"]
        client.force_login(teammate)
        listed = client.get(URL).json()["results"]
        assert [h["id"] for h in listed] == [pk] and "secret" not in listed[0]
        assert "secret" not in client.get(f"{URL}{pk}/").json()
        client.force_login(outsider)
        assert client.get(URL).json()["results"] == []
        assert client.get(f"{URL}{pk}/").status_code == 404
        assert client.get(f"{URL}{pk}/deliveries/").status_code == 404
        assert post(client, URL, hook).status_code == 400  # not her team
        client.force_login(reviewer)
        assert post(client, URL, {**hook, "team": None}).status_code == 400
        client.force_login(staff)
        admin_wide = post(client, URL, {**hook, "team": None})
        assert admin_wide.status_code == 201 and admin_wide.json()["team"] is None
        assert len(client.get(URL).json()["results"]) == 2
        client.force_login(teammate)
        response = client.patch(
            f"{URL}{pk}/", json.dumps({"active": False}), content_type="application/json"
        )
        assert response.status_code == 200 and response.json()["active"] is False
        client.logout()
        for key in (expired_token, revoked_token):  # Alice's, dead: her team's hook is shut
            assert_token_refused(client.get(f"{URL}{pk}/", **token(key)))
            for method in (client.patch, client.delete):
                assert_token_refused(
                    method(f"{URL}{pk}/", '{"active": false}', **JSON, **token(key))
                )
            assert_token_refused(client.get(f"{URL}{pk}/deliveries/", **token(key)))
        client.force_login(teammate)
        assert client.delete(f"{URL}{pk}/").status_code == 204

    def test_unknown_events_are_refused(self, client, developer):
        client.force_login(developer)
        hook = {"team": "payments", "url": "http://127.0.0.1:9/h", "events": ["run.exploded"]}
        response = post(client, URL, hook)
        assert response.status_code == 400 and "events[0]" in response.json()["errors"]


def test_signature_round_trip_and_tampering():
    header = webhook_sign(secret="s3cret", timestamp=1_800_000_000, body=b"{}")
    assert header.startswith("t=1800000000,v1=")
    # too old for a receiver's tolerance, whatever the body
    assert not webhook_verify(secret="s3cret", header=header, body=b"{}")
    now = int(time.time())
    fresh = webhook_sign(secret="s3cret", timestamp=now, body=b'{"a": 1}')
    assert webhook_verify(secret="s3cret", header=fresh, body=b'{"a": 1}')
    assert not webhook_verify(secret="s3cret", header=fresh, body=b'{"a": 2}')
    assert not webhook_verify(secret="other", header=fresh, body=b'{"a": 1}')


def test_a_status_change_is_delivered_signed_after_a_failure(
    developer, change, receiver, eager_celery, django_capture_on_commit_callbacks
):
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    hook = WebhookSubscription.objects.create(
        team=change.microservice.team,
        url=url,
        events=["change_request.status"],
        secret="team-secret",
    )
    WebhookSubscription.objects.create(  # another event only: gets nothing
        team=None, url=url, events=["drift.found"], secret="x"
    )
    with django_capture_on_commit_callbacks(execute=True):
        change_request_cancel(actor=developer, change_request=change)
    assert len(receiver.received) == 2  # a 500, then the retry's 204
    headers, body = receiver.received[-1]
    assert webhook_verify(secret="team-secret", header=headers[SIGNATURE_HEADER], body=body)
    event = json.loads(body)
    assert event["event"] == "change_request.status" and headers["X-IRSA-Event"] == event["event"]
    assert event["data"] == {
        "change_request": change.pk,
        "microservice": "orders",
        "kind": "create",
        "status": "cancelled",
    }
    delivery = WebhookDelivery.objects.get()
    assert (delivery.subscription, delivery.status, delivery.attempts) == (hook, "delivered", 2)
    assert delivery.last_status_code == 204


def test_the_delivery_log_shows_the_last_failure(
    client, developer, team, receiver, eager_celery, django_capture_on_commit_callbacks
):
    receiver.fail = 100  # never answers 2xx
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    client.force_login(developer)
    created = post(client, URL, {"team": "payments", "url": url, "events": ["drift.found"]})
    pk = created.json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        webhook_emit(event="drift.found", team_id=team.pk, data={"cluster": "demo"})
    assert len(receiver.received) == 6  # the first attempt and five retries
    [entry] = client.get(f"{URL}{pk}/deliveries/").json()["results"]
    assert (entry["status"], entry["attempts"]) == ("failed", 6)
    assert (entry["last_status_code"], entry["last_response"]) == (500, "receiver down")
    assert entry["payload"]["data"] == {"cluster": "demo"}


def test_the_receiver_example_of_the_docs_verifies_our_signature():
    """docs/api.md's `verify` for receivers, run as written, against what the portal sends."""
    from tests.integration.test_cli_flow import doc_examples

    namespace: dict = {}
    exec(doc_examples()["verify.py"], namespace)  # noqa: S102 (our own documentation)
    body = b'{"event": "run.finished"}'
    header = webhook_sign(secret="s3cret", timestamp=int(time.time()), body=body)
    assert namespace["verify"]("s3cret", header, body)
    assert not namespace["verify"]("s3cret", header, body + b" ")
    assert not namespace["verify"]("other", header, body)


def test_a_drift_check_that_finds_changes_sends_run_finished_and_drift_found(
    change, cluster, receiver, eager_celery, django_capture_on_commit_callbacks
):
    from provisioning.models import Run, RunKind, RunStatus
    from provisioning.services.runs import run_finish

    receiver.fail = 0
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    WebhookSubscription.objects.create(
        team=None, url=url, events=["run.finished", "drift.found"], secret="admin-wide"
    )
    drift = test_ui.plan(change, cluster, status=RunStatus.RUNNING)
    Run.objects.filter(pk=drift.pk).update(kind=RunKind.DRIFT)
    with django_capture_on_commit_callbacks(execute=True):
        assert run_finish(run_id=drift.pk, status=RunStatus.SUCCEEDED, has_changes=True)
    events = [json.loads(body) for _, body in receiver.received]
    assert sorted(e["event"] for e in events) == ["drift.found", "run.finished"]
    assert events[0]["data"]["run"] == drift.pk and events[0]["data"]["cluster"] == "demo"
    assert events[0]["data"]["has_changes"] is True
