"""Personas: Alice the developer owns the service, Tom is on her team, Olga is an outsider, and
Rita reviews for security."""

import pytest
from django.contrib.auth.models import Group

from provisioning.permissions import SECURITY_GROUP
from tests.factories import ClusterFactory, MicroserviceFactory, TeamFactory, UserFactory

pytest_plugins = ["tests.sandbox_fixtures"]


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """API throttle and failed-authentication counts live in the cache: each test starts clean."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def team(db):
    return TeamFactory(name="payments")


@pytest.fixture
def developer(team):
    user = UserFactory(username="alice")
    team.members.add(user)
    return user


@pytest.fixture
def teammate(team):
    user = UserFactory(username="tom")
    team.members.add(user)
    return user


@pytest.fixture
def outsider(db):
    other = TeamFactory(name="search")
    user = UserFactory(username="olga")
    other.members.add(user)
    return user


@pytest.fixture
def reviewer(db):
    user = UserFactory(username="rita")
    user.groups.add(Group.objects.get_or_create(name=SECURITY_GROUP)[0])
    return user


@pytest.fixture
def cluster(db):
    return ClusterFactory(name="demo")


@pytest.fixture
def microservice(team):
    return MicroserviceFactory(
        name="orders", team=team, namespace="shop", service_accounts=["orders"]
    )


# Tokens that no longer open the door: Alice's, past its expiry, and Alice's, revoked.


@pytest.fixture
def expired_token(developer) -> str:
    from datetime import timedelta

    from django.utils import timezone

    from provisioning.models import ApiToken
    from provisioning.services.tokens import api_token_create

    token, key = api_token_create(actor=developer, name="expired", days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return key


@pytest.fixture
def revoked_token(developer) -> str:
    from provisioning.services.tokens import api_token_create, api_token_revoke

    token, key = api_token_create(actor=developer, name="revoked")
    api_token_revoke(actor=developer, token=token)
    return key
