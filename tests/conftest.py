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
