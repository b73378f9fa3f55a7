import pytest

from provisioning.iam.spec import SpecError
from provisioning.models import AuditEvent, ChangeRequest, Microservice
from provisioning.services.microservices import microservice_register

RESOURCES = [
    {"kind": "dynamodb_table", "name": "orders", "access": "read_write"},
    {"kind": "s3_bucket", "name": "invoices", "access": "read"},
]


def register(developer, team, cluster, **overrides):
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


def test_register_creates_the_service_a_draft_change_and_an_audit_event(developer, team, cluster):
    change = register(developer, team, cluster)
    assert change.status == "draft" and change.kind == "create"
    assert change.spec["clusters"] == ["demo"]
    assert Microservice.objects.get(name="orders").team == team
    event = AuditEvent.objects.get(action="microservice.registered")
    assert event.actor == developer and event.data["clusters"] == ["demo"]


def test_invalid_spec_writes_nothing(developer, team, cluster):
    bad = [*RESOURCES, {"kind": "s3_bucket", "name": "x" * 60, "access": "read"}]
    with pytest.raises(SpecError) as exc:
        register(developer, team, cluster, resources=bad)
    assert "resources[2].name" in exc.value.errors
    assert not Microservice.objects.exists()
    assert not ChangeRequest.objects.exists()
    assert not AuditEvent.objects.exists()


def test_duplicate_name_is_a_clear_error(developer, team, cluster):
    register(developer, team, cluster)
    with pytest.raises(SpecError) as exc:
        register(developer, team, cluster)
    assert "already exists" in exc.value.errors["microservice"][0]


def test_needs_a_cluster_and_a_justification(developer, team, cluster):
    with pytest.raises(SpecError) as exc:
        register(developer, team, cluster, clusters=[])
    assert "clusters" in exc.value.errors
    with pytest.raises(SpecError) as exc:
        register(developer, team, cluster, justification="  ")
    assert "justification" in exc.value.errors
