"""factory_boy factories for the domain; defaults form a valid demo-like world."""

import factory
from django.contrib.auth.models import User

from provisioning import models as m
from provisioning.services.microservices import microservice_register

RESOURCES = [
    {"kind": "dynamodb_table", "name": "orders", "access": "read_write"},
    {"kind": "s3_bucket", "name": "invoices", "access": "read"},
]


def register_orders(developer, team, cluster, **overrides) -> m.ChangeRequest:
    """The demo registration (orders in namespace shop, RESOURCES) through the real service;
    returns its draft ``create`` change request. Keyword overrides replace the defaults."""
    kwargs = {
        "actor": developer,
        "team": team,
        "name": "orders",
        "namespace": "shop",
        "service_accounts": ["orders"],
        "resources": RESOURCES,
        "clusters": [cluster],
        "justification": "stores orders",
    }
    kwargs.update(overrides)
    return microservice_register(**kwargs)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Team

    name = factory.Sequence(lambda n: f"team-{n}")


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Cluster

    name = factory.Sequence(lambda n: f"c{n}")
    environment = m.Environment.DEV
    account_id = "123456789012"
    region = "us-east-1"
    oidc_provider_arn = (
        "arn:aws:iam::123456789012:oidc-provider/"
        "oidc.eks.us-east-1.amazonaws.com/id/9A1B2C3D4E5F60718293A4B5C6D7E8F9"
    )


class MicroserviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Microservice

    name = factory.Sequence(lambda n: f"svc-{n}")
    team = factory.SubFactory(TeamFactory)
    namespace = "shop"
    service_accounts = factory.LazyAttribute(lambda o: [o.name])


def approve_as_shown(reviewer, change: m.ChangeRequest) -> m.Review:
    """Approve exactly the plans a reviewer is shown now (their run ids and sha256)."""
    from provisioning.selectors import change_request_latest_plans
    from provisioning.services.changes import change_request_approve

    shown = {str(p.pk): p.plan_sha256 for p in change_request_latest_plans(change_request=change)}
    return change_request_approve(actor=reviewer, change_request=change, shown_plan_hashes=shown)
