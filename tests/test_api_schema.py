"""The published schema, fuzzed: Schemathesis generates requests for every operation of
/api/v1/ (valid and invalid ones) and runs all its checks on the answers — no 500, every status
and body as documented, invalid input refused. Requests go in-process to the WSGI application as
Alice (developer), in a world with a team, a cluster and an applied microservice."""

from __future__ import annotations

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
