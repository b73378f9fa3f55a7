import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from provisioning.models import AuditEvent, ChangeKind, ChangeRequest, ChangeStatus, Run, Workspace
from provisioning.services.audit import audit_record
from tests.factories import ClusterFactory, MicroserviceFactory


def make_change(microservice, user, status=ChangeStatus.DRAFT):
    return ChangeRequest.objects.create(
        microservice=microservice,
        kind=ChangeKind.CHANGE,
        status=status,
        spec={},
        justification="x",
        created_by=user,
    )


def test_one_open_change_request_per_microservice(microservice, developer):
    make_change(microservice, developer)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_change(microservice, developer, status=ChangeStatus.PLANNED)
    make_change(microservice, developer, status=ChangeStatus.REJECTED)  # closed ones may pile up


def test_one_active_run_per_workspace(microservice, cluster):
    workspace = Workspace.objects.create(microservice=microservice, cluster=cluster)
    Run.objects.create(workspace=workspace, kind="plan")
    with pytest.raises(IntegrityError), transaction.atomic():
        Run.objects.create(workspace=workspace, kind="apply")


def test_names_unique_in_their_scope(team, cluster):
    MicroserviceFactory(name="orders", team=team)
    with pytest.raises(IntegrityError), transaction.atomic():
        MicroserviceFactory(name="orders", team=team)
    with pytest.raises(IntegrityError), transaction.atomic():
        ClusterFactory(name="demo")


def test_cluster_clean_checks_oidc_account_and_region(db):
    cluster = ClusterFactory.build(name="x", account_id="210987654321")
    with pytest.raises(ValidationError) as exc:
        cluster.full_clean()
    assert "The OIDC provider is in account 123456789012, not 210987654321." in str(exc.value)


def test_model_validators_refuse_bad_names(team):
    service = MicroserviceFactory.build(name="Orders_Svc", team=team, namespace="shop")
    with pytest.raises(ValidationError) as exc:
        service.full_clean()
    assert "'Orders_Svc' has characters other than a-z, 0-9 and '-'" in str(exc.value)


def test_audit_events_are_append_only_in_python_and_in_the_database(microservice, developer):
    event = audit_record(actor=developer, action="test.done", obj=microservice, data={"a": 1})
    assert event.actor_name == "alice" and event.object_type == "provisioning.microservice"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()
    if connection.vendor == "postgresql":
        with pytest.raises(Exception, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
        with pytest.raises(Exception, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.done"


def test_tests_run_on_postgresql():
    assert connection.vendor == "postgresql"
