"""The published schema, fuzzed: Schemathesis generates requests for every operation of
/api/v1/ (valid and invalid ones) and runs all its checks on the answers — no 500, every status
and body as documented, invalid input refused. Requests go in-process to the WSGI application as
Alice (developer), in a world with a team, a cluster and an applied microservice."""

from __future__ import annotations

import functools
import json

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from provisioning.services.tokens import api_token_create
from tests import test_ui

# The portal's WSGI handler without portal/wsgi.py's real-AWS start-up guard: the tests' AWS is
# the sandbox, set per test.
application = get_wsgi_application()
change = test_ui.change
applied = test_ui.applied

MAX_EXAMPLES = 5  # per operation, positive and negative phases alike: about a minute in all


@pytest.fixture
def token(developer, applied) -> str:
    return api_token_create(actor=developer, name="test")[1]


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """The WSGI handler closes the database connection after each request (as in production);
    here that connection holds the test's transaction, as Django's own test client keeps it."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def published_schema() -> dict:
    """What GET /api/schema/?format=json serves (generated without a database)."""
    generator = SchemaGenerator(title="IRSA Portal API", version="1")
    return json.loads(OpenApiJsonRenderer().render(generator.get_schema(request=None, public=True)))


# All checks run. One is told what a valid request may also get: the schema says the shapes, but
# whether a team is yours, a cluster exists or a name is free is only known to the server, which
# answers 400 with the `errors` of what to change (docs/api.md, "Errors").
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409"]
            }
        }
    }
)
schema = schemathesis.openapi.from_dict(published_schema(), config=CONFIG)
schema.app = application


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_as_documented(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"})


@functools.cache
def documented_schema() -> dict:
    """The published schema, generated once for the checks below (which only read it)."""
    return published_schema()


def expected_errors(method: str, operation: dict) -> set[str]:
    """The error answers an operation can give, from what it takes (docs/api.md, "Errors")."""
    wanted = {"400", "401", "429"}  # a control character in the address; auth; throttles
    parameters = operation.get("parameters", [])
    if any(p["in"] == "path" for p in parameters):
        wanted.add("404")
    if "requestBody" in operation:
        wanted |= {"413", "415"}
    if method != "get":
        wanted.add("403")  # permissions are checked on the server for every write
    if method in ("post", "put", "patch"):
        wanted.add("409")
    return wanted


def test_every_operation_documents_its_error_answers():
    schema = documented_schema()
    gaps = {}
    operations = 0
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            operations += 1
            missing = expected_errors(method, operation) - set(operation["responses"])
            if missing:
                gaps[f"{method.upper()} {path}"] = sorted(missing)
    assert operations >= 30 and gaps == {}


def test_401_and_429_are_documented_with_their_body_and_header_everywhere():
    schema = documented_schema()
    assert schema["components"]["schemas"]["Detail"]["required"] == ["detail"]
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            refused = operation["responses"]["401"]
            assert refused["headers"]["WWW-Authenticate"]["required"] is True, where
            throttled = operation["responses"]["429"]
            body = throttled["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Detail"}, where
            retry_after = throttled["headers"]["Retry-After"]
            assert retry_after["required"] and retry_after["schema"]["type"] == "integer", where


def documented(method: str, path: str, status: str) -> dict:
    return documented_schema()["paths"][path][method]["responses"][status]


def conforms(response, answer: dict) -> None:
    """The live answer has the documented body and every documented header, typed."""
    import jsonschema

    schema = documented_schema()
    ref = answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    jsonschema.validate(response.json(), {**schema["components"]["schemas"][ref]})
    assert list(response.json()) == ["detail"]
    for name, header in answer["headers"].items():
        value = response[name]
        if header["schema"]["type"] == "integer":
            value = int(value)
        jsonschema.validate(value, header["schema"])


def test_a_throttled_client_gets_the_documented_429(client, monkeypatch, developer):
    from rest_framework.throttling import SimpleRateThrottle

    # DRF binds the rates (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]) when it is imported.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "1/min", "user": "1/min"})
    client.force_login(developer)
    assert client.get("/api/v1/me/").status_code == 200
    response = client.post("/api/v1/dry-run/", {}, content_type="application/json")
    assert response.status_code == 429
    conforms(response, documented("post", "/api/v1/dry-run/", "429"))


def test_bad_tokens_get_the_documented_401_then_429(client, settings, db):
    settings.API_FAILED_AUTH_LIMIT = 2
    headers = {"HTTP_AUTHORIZATION": "Token irsa_not-a-real-token"}
    for _ in range(2):
        response = client.get("/api/v1/runs/", **headers)
        assert response.status_code == 401
        conforms(response, documented("get", "/api/v1/runs/", "401"))
    response = client.get("/api/v1/runs/", **headers)
    assert response.status_code == 429
    conforms(response, documented("get", "/api/v1/runs/", "429"))
