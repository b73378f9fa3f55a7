"""API v1 for pipelines: versioned paths, the JSON error contract, the declarative spec,
Idempotency-Key, runs (list, log long-poll), me and teams — across the personas (Alice the
developer, Tom her teammate, Olga the outsider, Rita the reviewer, staff, anonymous, a bad token,
Alice's expired token and Alice's revoked token).
Nothing reaches Celery: on-commit callbacks are not run unless a test captures them."""

from __future__ import annotations

import json
import threading
import time

import pytest
import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext

from provisioning.models import (
    ChangeRequest,
    IdempotencyRecord,
    Microservice,
    Run,
    RunKind,
    RunStatus,
)
from provisioning.services.idempotency import idempotency_records_purge
from provisioning.services.tokens import api_token_create
from tests import test_ui
from tests.factories import RESOURCES, MicroserviceFactory, UserFactory
from tests.refusals import assert_token_refused, token

change = test_ui.change
planned = test_ui.planned
applied = test_ui.applied

V1 = "/api/v1"
SPEC = {
    "team": "payments",
    "namespace": "shop",
    "service_accounts": ["orders"],
    "resources": RESOURCES,
    "clusters": ["demo"],
    "justification": "stores orders",
}


def put(client, url, data, **extra):
    return client.put(url, json.dumps(data), content_type="application/json", **extra)


def post(client, url, data=None, **extra):
    return client.post(url, json.dumps(data or {}), content_type="application/json", **extra)


@pytest.fixture
def staff(db):
    return UserFactory(username="sam", is_staff=True)


# --- Versioning and the error contract -----------------------------------------------------


class TestErrorContract:
    def test_v1_and_unversioned_paths_answer_the_same(self, client, developer, change):
        client.force_login(developer)
        a = client.get(f"{V1}/change-requests/{change.pk}/").json()
        b = client.get(f"/api/change-requests/{change.pk}/").json()
        assert a == b and a["id"] == change.pk

    def test_a_non_integer_id_is_a_json_404(self, client, developer):
        client.force_login(developer)
        for path in (f"{V1}/change-requests/abc/", "/api/runs/x/", f"{V1}/nothing-here"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response["Content-Type"] == "application/json" and response.json()["detail"]

    def test_a_post_without_the_trailing_slash_works(self, client, developer, change):
        client.force_login(developer)
        response = post(client, f"{V1}/change-requests/{change.pk}/submit")
        assert response.status_code == 200 and response.json()["status"] == "submitted"

    def test_a_parse_error_uses_the_errors_shape(self, client, developer):
        client.force_login(developer)
        response = client.post(f"{V1}/microservices/", "{not json", content_type="application/json")
        assert response.status_code == 400
        assert list(response.json()) == ["errors"] and response.json()["errors"]["body"]

    def test_a_body_over_the_limit_is_a_json_413(self, client, developer, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        client.force_login(developer)
        response = post(client, f"{V1}/dry-run/", {"padding": "x" * 2000})
        assert response.status_code == 413 and "larger than 1000 bytes" in response.json()["detail"]

    def test_wrong_method_and_media_type_are_json(self, client, developer):
        client.force_login(developer)
        assert client.delete(f"{V1}/microservices/").json()["detail"]
        response = client.post(f"{V1}/microservices/", "a=b", content_type="text/plain")
        assert response.status_code == 415 and response.json()["detail"]


# --- Declarative spec -----------------------------------------------------------------------


class TestDeclarativeSpec:
    url = f"{V1}/microservices/orders/spec/"

    def test_it_registers_and_submits_then_is_a_no_op(self, client, developer, cluster):
        client.force_login(developer)
        first = put(client, self.url, SPEC)
        assert first.status_code == 201, first.json()
        assert first.json()["kind"] == "create" and first.json()["status"] == "submitted"
        # the same spec again (resources in another order): the same request, nothing new
        again = put(client, self.url, {**SPEC, "resources": RESOURCES[::-1]})
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        assert ChangeRequest.objects.count() == 1
        assert Run.objects.filter(kind=RunKind.PLAN).count() == 1

    def test_a_different_spec_while_one_is_open_is_409_with_its_id(self, client, developer, change):
        client.force_login(developer)
        response = put(client, self.url, {**SPEC, "service_accounts": ["orders", "worker"]})
        assert response.status_code == 409
        assert response.json()["change_request"] == change.pk

    def test_applied_spec_is_a_no_op_and_a_change_opens_a_request(
        self, client, teammate, change, applied
    ):
        client.force_login(teammate)
        same = put(client, self.url, {k: v for k, v in SPEC.items() if k != "team"})
        assert same.status_code == 200 and same.json()["id"] == change.pk
        extra = {"kind": "s3_bucket", "name": "exports", "access": "read_write"}
        changed = put(client, self.url, {**SPEC, "resources": [*RESOURCES, extra]})
        assert changed.status_code == 201 and changed.json()["kind"] == "change"
        assert changed.json()["status"] == "submitted"

    def test_yaml_body_in_the_render_policies_format(self, client, developer, cluster):
        client.force_login(developer)
        body = yaml.safe_dump({"microservice": "orders", **SPEC, "submit": False})
        response = client.put(self.url, body, content_type="application/yaml")
        assert response.status_code == 201 and response.json()["status"] == "draft"

    def test_the_file_must_name_the_url_service(self, client, developer, cluster):
        client.force_login(developer)
        response = put(client, self.url, {**SPEC, "microservice": "billing"})
        assert response.status_code == 400 and "microservice" in response.json()["errors"]

    def test_personas(self, client, outsider, reviewer, change, expired_token, revoked_token):
        assert put(client, self.url, SPEC).status_code == 401
        for key in ("not-a-token", expired_token, revoked_token):
            assert_token_refused(put(client, self.url, SPEC, **token(key)))
        client.force_login(outsider)
        assert put(client, self.url, {**SPEC, "team": "search"}).status_code == 403
        client.force_login(reviewer)  # no team: cannot own a new service
        response = put(client, f"{V1}/microservices/billing/spec/", {**SPEC, "team": "payments"})
        assert response.status_code == 400 and "team" in response.json()["errors"]
        assert ChangeRequest.objects.count() == 1


# --- Idempotency-Key ------------------------------------------------------------------------


class TestIdempotencyKey:
    body = {**SPEC, "name": "orders"}

    def test_a_retried_post_gets_the_first_answer(self, client, developer, cluster):
        client.force_login(developer)
        first = post(client, f"{V1}/microservices/", self.body, HTTP_IDEMPOTENCY_KEY="k-1")
        again = post(client, f"{V1}/microservices/", self.body, HTTP_IDEMPOTENCY_KEY="k-1")
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
        assert Microservice.objects.count() == 1 and IdempotencyRecord.objects.count() == 1

    def test_the_key_with_another_body_is_422(self, client, developer, cluster):
        client.force_login(developer)
        post(client, f"{V1}/microservices/", self.body, HTTP_IDEMPOTENCY_KEY="k-2")
        other = {**self.body, "name": "billing"}
        response = post(client, f"{V1}/microservices/", other, HTTP_IDEMPOTENCY_KEY="k-2")
        assert response.status_code == 422 and "different request" in response.json()["detail"]
        assert not Microservice.objects.filter(name="billing").exists()

    def test_keys_are_per_user(self, client, developer, teammate, change):
        client.force_login(developer)
        url = f"{V1}/change-requests/{change.pk}/cancel/"
        assert post(client, url, HTTP_IDEMPOTENCY_KEY="same").status_code == 200
        client.force_login(teammate)  # Tom's key is his own: the request is really sent (409)
        assert post(client, url, HTTP_IDEMPOTENCY_KEY="same").status_code == 409

    def test_answers_past_the_ttl_are_purged_in_batches(self, developer, settings):
        from datetime import timedelta

        from django.utils import timezone

        from provisioning.tasks import purge_idempotency_records

        settings.IDEMPOTENCY_KEY_TTL = 3600

        def record(key):
            return IdempotencyRecord.objects.create(
                user=developer, key=key, method="POST", path="/api/v1/x/", body_sha256="0",
                status_code=200, response={},
            )  # fmt: skip

        for i in range(5):
            record(f"old-{i}")
        IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(seconds=3601))
        record("fresh")
        with CaptureQueriesContext(connection) as queries:
            assert idempotency_records_purge(batch_size=2) == 5
        deletes = [q for q in queries if q["sql"].startswith("DELETE")]
        assert len(deletes) == 3  # 2 + 2 + 1 rows
        assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]
        assert purge_idempotency_records() == 0  # the beat task: nothing old left
        settings.IDEMPOTENCY_KEY_TTL = 0
        assert purge_idempotency_records() == 1

    def test_a_key_past_the_ttl_is_a_new_request(self, client, developer, change, settings):
        from datetime import timedelta

        from django.utils import timezone

        client.force_login(developer)
        url = f"{V1}/change-requests/{change.pk}/submit/"
        assert post(client, url, HTTP_IDEMPOTENCY_KEY="s-1").status_code == 200
        settings.IDEMPOTENCY_KEY_TTL = 60
        IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(seconds=61))
        again = post(client, url, HTTP_IDEMPOTENCY_KEY="s-1")
        assert again.status_code == 409 and "Idempotent-Replayed" not in again  # really sent


# --- Reads: me, teams, runs, log ------------------------------------------------------------


class TestMeAndTeams:
    def test_me(self, client, developer, reviewer):
        token_key = api_token_create(actor=developer, name="test")[1]
        response = client.get(f"{V1}/me/", HTTP_AUTHORIZATION=f"Token {token_key}")
        assert response.json() == {
            "username": "alice",
            "email": developer.email,
            "is_staff": False,
            "is_reviewer": False,
            "teams": ["payments"],
        }
        client.force_login(reviewer)
        assert client.get(f"{V1}/me/").json()["is_reviewer"] is True

    def test_teams_by_persona(self, client, developer, outsider, reviewer, staff):
        assert client.get(f"{V1}/teams/").status_code == 401
        for user, names in [
            (developer, ["payments"]),
            (outsider, ["search"]),
            (reviewer, []),
            (staff, ["payments", "search"]),
        ]:
            client.force_login(user)
            got = [t["name"] for t in client.get(f"{V1}/teams/?ordering=name").json()["results"]]
            assert got == names, user


def _run(change, cluster, kind=RunKind.PLAN, status=RunStatus.SUCCEEDED, log=""):
    run = test_ui.plan(change, cluster, status=status)
    Run.objects.filter(pk=run.pk).update(kind=kind, log=log)
    return Run.objects.get(pk=run.pk)


class TestRuns:
    def test_filters_and_personas(self, client, developer, outsider, reviewer, change, cluster):
        plan = _run(change, cluster)
        drift = _run(change, cluster, kind=RunKind.DRIFT, status=RunStatus.FAILED)
        client.force_login(developer)

        def ids(query=""):
            response = client.get(f"{V1}/runs/?{query}")
            assert response.status_code == 200, response.json()
            return [r["id"] for r in response.json()["results"]]

        assert ids() == [drift.pk, plan.pk]
        assert ids("kind=drift") == [drift.pk]
        assert ids("status=succeeded&microservice=orders&workspace=demo") == [plan.pk]
        assert ids("workspace=other") == []
        assert ids("ordering=id&page_size=1") == [plan.pk]
        assert "log" not in client.get(f"{V1}/runs/").json()["results"][0]
        response = client.get(f"{V1}/runs/?kind=nap")
        assert response.status_code == 400 and "kind" in response.json()["errors"]
        client.force_login(outsider)
        assert ids() == []
        client.force_login(reviewer)
        assert ids() == [drift.pk, plan.pk]

    def test_queries_per_list_do_not_grow_with_rows(self, client, developer, team, cluster):
        client.force_login(developer)

        def count(path):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(path).status_code == 200
            return len(queries)

        def add(i):
            m = MicroserviceFactory(name=f"svc-{i}", team=team, namespace=f"ns{i}")
            spec = {**SPEC, "namespace": f"ns{i}"}
            cr = ChangeRequest.objects.create(
                microservice=m, kind="create", spec=spec, justification="x", created_by=developer
            )
            _run(cr, cluster)

        add(0)
        paths = [f"{V1}/microservices/", f"{V1}/runs/", f"{V1}/change-requests/"]
        one = [count(p) for p in paths]
        for i in range(1, 50):
            add(i)
        assert [count(p) for p in paths] == one


class TestRunLog:
    def url(self, run, query=""):
        return f"{V1}/runs/{run.pk}/log/?{query}"

    def test_offsets(self, client, developer, outsider, change, cluster):
        run = _run(change, cluster, log="héllo\nworld\n")
        client.force_login(developer)
        whole = client.get(self.url(run)).json()
        assert whole["text"] == "héllo\nworld\n" and whole["finished"] is True
        assert whole["next_offset"] == len("héllo\nworld\n".encode())
        tail = client.get(self.url(run, "offset=7")).json()
        assert tail["text"] == "world\n" and tail["offset"] == 7
        end = client.get(self.url(run, f"offset={whole['next_offset']}")).json()
        assert end["text"] == "" and end["next_offset"] == whole["next_offset"]
        assert client.get(self.url(run, "offset=-1")).status_code == 400
        client.force_login(outsider)
        assert client.get(self.url(run)).status_code == 404

    @pytest.mark.django_db(transaction=True)
    def test_wait_returns_when_output_arrives(self, client, developer, change, cluster):
        run = _run(change, cluster, status=RunStatus.RUNNING, log="line 1\n")
        client.force_login(developer)
        quiet_start = time.monotonic()
        quiet = client.get(self.url(run, "offset=7&wait=1")).json()
        assert quiet["text"] == "" and time.monotonic() - quiet_start >= 0.9

        def append():
            time.sleep(0.7)
            Run.objects.filter(pk=run.pk).update(log="line 1\nline 2\n")
            connection.close()  # this thread's own connection

        writer = threading.Thread(target=append)
        writer.start()
        start = time.monotonic()
        body = client.get(self.url(run, "offset=7&wait=20")).json()
        writer.join()
        assert body["text"] == "line 2\n" and body["status"] == "running"
        assert time.monotonic() - start < 5


# --- Filters, inventory, audit, ETags -------------------------------------------------------


class TestMicroserviceFilters:
    def test_team_cluster_status_and_personas(self, client, developer, outsider, staff, applied):
        other = MicroserviceFactory(name="search-api", team=outsider.teams.get(), namespace="s")

        def names(user, query=""):
            client.force_login(user)
            response = client.get(f"{V1}/microservices/?{query}")
            assert response.status_code == 200, response.json()
            return [m["name"] for m in response.json()["results"]]

        assert names(developer) == ["orders"]
        assert names(developer, "team=search") == []  # not silently ignored: nothing of hers
        assert names(staff, "team=search") == [other.name]
        assert names(staff, "cluster=demo") == ["orders"]
        assert names(staff, "status=live") == ["orders"]
        assert names(staff, "status=new&ordering=-name") == [other.name]
        assert names(staff, "ordering=-name&page_size=1") == [other.name]
        client.force_login(staff)
        response = client.get(f"{V1}/microservices/?status=alive")
        assert response.status_code == 400 and "status" in response.json()["errors"]
        assert client.get(f"{V1}/microservices/orders/").json()["state"] == "live"


class TestInventoryAndAudit:
    def test_inventory_by_persona(self, client, developer, outsider, reviewer, applied):
        for user, expected in [(developer, ["orders"]), (outsider, []), (reviewer, ["orders"])]:
            client.force_login(user)
            for kind in ("roles", "keys"):
                response = client.get(f"{V1}/inventory/{kind}/?cluster=demo")
                assert response.status_code == 200
                rows = response.json()["results"]
                assert [r["microservice"] for r in rows] == expected, (user, kind)
        client.force_login(developer)
        [key] = client.get(f"{V1}/inventory/keys/").json()["results"]
        assert key["kind"] == "key" and key["arn"].startswith("arn:aws:kms:")
        assert key["rotation"] == "Yearly (automatic)"
        assert client.get(f"{V1}/inventory/roles/?status=gone").status_code == 400
        client.logout()
        assert client.get(f"{V1}/inventory/roles/").status_code == 401

    def test_audit_events_by_persona(self, client, developer, outsider, reviewer, change):
        client.force_login(developer)
        mine = client.get(f"{V1}/audit-events/").json()["results"]
        assert [e["action"] for e in mine] == ["microservice.registered"]
        assert mine[0]["actor"] == "alice"
        assert client.get(f"{V1}/audit-events/?action=run.").json()["results"] == []
        client.force_login(outsider)
        assert client.get(f"{V1}/audit-events/").json()["results"] == []
        client.force_login(reviewer)
        assert client.get(f"{V1}/audit-events/?actor=alice").json()["count"] == 1
        response = client.get(f"{V1}/audit-events/?since=yesterday")
        assert response.status_code == 400 and "since" in response.json()["errors"]


class TestETags:
    def test_an_unchanged_detail_is_304(self, client, developer, change):
        client.force_login(developer)
        url = f"{V1}/change-requests/{change.pk}/"
        first = client.get(url)
        etag = first["ETag"]
        again = client.get(url, HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
        post(client, f"{url}submit/")
        changed = client.get(url, HTTP_IF_NONE_MATCH=etag)
        assert changed.status_code == 200 and changed["ETag"] != etag
        for path in (f"{V1}/microservices/orders/", f"{V1}/clusters/demo/"):
            assert client.get(path)["ETag"]


READS = [
    "/api/v1/me/",
    "/api/v1/teams/",
    "/api/v1/runs/",
    "/api/v1/runs/{run}/",
    "/api/v1/runs/{run}/log/",
    "/api/v1/inventory/roles/",
    "/api/v1/inventory/keys/",
    "/api/v1/audit-events/",
    "/api/v1/webhooks/",
    "/api/v1/microservices/?team=payments",
]


@pytest.mark.parametrize(
    "persona, hidden",
    [
        ("developer", 200),
        ("teammate", 200),
        ("reviewer", 200),
        ("staff", 200),
        ("outsider", 404),  # lists answer (empty); the run itself is another team's
        ("anonymous", 401),
        ("bad_token", 401),
        ("expired_token", 401),
        ("revoked_token", 401),
    ],
)
def test_new_reads_by_persona(request, client, persona, hidden, change, cluster, teammate):
    run = _run(change, cluster, log="x")
    headers = {}
    if persona == "bad_token":
        headers = token("0000000000000000000000000000000000000000")
    elif persona in ("expired_token", "revoked_token"):
        headers = token(request.getfixturevalue(persona))
    elif persona != "anonymous":
        user = request.getfixturevalue(persona)
        headers = token(api_token_create(actor=user, name="test")[1])
    for path in READS:
        response = client.get(path.format(run=run.pk), **headers)
        expected = hidden if "{run}" in path or hidden == 401 else 200
        assert response.status_code == expected, (persona, path, response.content[:200])
        if expected == 401 and persona == "anonymous":
            assert response["WWW-Authenticate"] == "Token" and list(response.json()) == ["detail"]
        elif expected == 401:
            assert_token_refused(response)


def _writes(change, hook):
    """Every write of the new endpoints: (method, path, body)."""
    return [
        ("put", f"{V1}/microservices/orders/spec/", SPEC),
        ("post", f"{V1}/microservices/", {**SPEC, "name": "billing"}),
        ("post", f"{V1}/change-requests/{change.pk}/submit/", {}),
        ("post", f"{V1}/change-requests/{change.pk}/cancel/", {}),
        ("post", f"{V1}/dry-run/", {**SPEC, "microservice": "orders"}),
        ("post", f"{V1}/microservices/orders/workspaces/demo/verify/", {}),
        ("post", f"{V1}/webhooks/", {"team": "payments", "url": "http://127.0.0.1:9/h"}),
        ("patch", f"{V1}/webhooks/{hook.pk}/", {"active": False}),
        ("delete", f"{V1}/webhooks/{hook.pk}/", None),
    ]


@pytest.mark.parametrize("persona", ["expired_token", "revoked_token"])
def test_new_writes_refuse_a_dead_token_and_change_nothing(
    request, client, persona, change, cluster
):
    from provisioning.models import AuditEvent, WebhookSubscription

    hook = WebhookSubscription.objects.create(
        team=change.microservice.team, url="http://127.0.0.1:9/h", events=["run.finished"]
    )
    headers = token(request.getfixturevalue(persona))
    audited = AuditEvent.objects.exclude(action="api_token.refused").count()
    for method, path, body in _writes(change, hook):
        data = json.dumps(body) if body is not None else ""
        response = getattr(client, method)(path, data, content_type="application/json", **headers)
        assert_token_refused(response)
    change.refresh_from_db()
    hook.refresh_from_db()
    assert change.status == "draft" and hook.active
    assert Microservice.objects.count() == 1 and ChangeRequest.objects.count() == 1
    assert AuditEvent.objects.exclude(action="api_token.refused").count() == audited
    # each refusal is audited with its reason (expired / revoked), never with the key
    reasons = set(
        AuditEvent.objects.filter(action="api_token.refused").values_list("data__reason", flat=True)
    )
    assert reasons == {persona.removesuffix("_token")}
