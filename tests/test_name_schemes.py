"""Upgrading keeps names: workspaces that existed before '--' joins get name scheme 1 from the
migration and keep planning with their single-dash names. Alice (developer) owns the services."""

import importlib
import json

import pytest
from django.apps import apps

from provisioning.iam.spec import SpecError, parse_workspace_spec
from provisioning.models import (
    ChangeKind,
    ChangeStatus,
    NameScheme,
    Run,
    RunKind,
    RunStatus,
    Workspace,
    WorkspaceStatus,
)
from provisioning.services.changes import change_request_create, change_request_submit
from provisioning.terraform.render import TFVARS_FILE, render_workspace
from tests.factories import RESOURCES, register_orders

pytestmark = pytest.mark.django_db

migration = importlib.import_module("provisioning.migrations.0005_i10_names")


def legacy_orders(developer, team, cluster) -> Workspace:
    """orders as the migration leaves a workspace applied before the upgrade."""
    change = register_orders(developer, team, cluster)
    change.status = ChangeStatus.APPLIED
    change.save(update_fields=["status"])
    return Workspace.objects.create(
        microservice=change.microservice,
        cluster=cluster,
        status=WorkspaceStatus.APPLIED,
        name_scheme=NameScheme.LEGACY,
    )


def change_orders(developer, workspace, resources):
    return change_request_create(
        actor=developer,
        microservice=workspace.microservice,
        kind=ChangeKind.CHANGE,
        spec={
            "namespace": "shop",
            "service_accounts": ["orders"],
            "resources": resources,
            "clusters": [workspace.cluster.name],
        },
        justification="audit trail",
    )


def test_the_migration_gives_existing_workspaces_and_their_run_specs_scheme_1(
    developer, team, cluster
):
    change = register_orders(developer, team, cluster)
    existing = Workspace.objects.create(microservice=change.microservice, cluster=cluster)
    old_spec = {"microservice": "orders", "namespace": "shop", "resources": []}
    run = Run.objects.create(
        workspace=existing, kind=RunKind.APPLY, status=RunStatus.SUCCEEDED, spec=old_spec
    )
    empty = Run.objects.create(workspace=existing, kind=RunKind.DRIFT, spec={})
    assert existing.name_scheme == NameScheme.CURRENT  # the field's default before the data step

    migration.keep_legacy_names(apps, None)

    existing.refresh_from_db()
    assert existing.name_scheme == NameScheme.LEGACY
    assert Run.objects.get(pk=run.pk).spec == {**old_spec, "name_scheme": 1}
    assert Run.objects.get(pk=empty.pk).spec == {}
    other = register_orders(
        developer, team, cluster, name="billing", service_accounts=["billing"]
    ).microservice
    assert Workspace.objects.create(microservice=other, cluster=cluster).name_scheme == 2


def test_a_new_service_plans_with_the_current_names(developer, team, cluster):
    change = register_orders(developer, team, cluster)
    [run] = change_request_submit(actor=developer, change_request=change)
    assert run.workspace.name_scheme == NameScheme.CURRENT
    assert run.spec["name_scheme"] == 2
    assert parse_workspace_spec(run.spec).resources  # the stored spec parses back


def test_a_change_to_a_legacy_workspace_plans_with_the_legacy_names(
    developer, team, cluster, settings
):
    settings.S3_BUCKET_NAME_SUFFIX = "-111122223333"  # set at upgrade; legacy buckets had none
    workspace = legacy_orders(developer, team, cluster)
    change = change_orders(
        developer,
        workspace,
        [*RESOURCES, {"kind": "dynamodb_table", "name": "audit", "access": "read"}],
    )
    [run] = change_request_submit(actor=developer, change_request=change)

    assert run.workspace_id == workspace.pk
    assert run.spec["name_scheme"] == 1
    tfvars = json.loads(
        render_workspace(parse_workspace_spec(run.spec), region=cluster.region)[TFVARS_FILE]
    )
    assert tfvars["role_name"] == "demo-orders"
    assert tfvars["kms_alias"] == "alias/irsa/demo-orders"
    assert {k: t["name"] for k, t in tfvars["dynamodb_tables"].items()} == {
        "orders": "demo-orders-orders",
        "audit": "demo-orders-audit",
    }
    assert {k: b["name"] for k, b in tfvars["s3_buckets"].items()} == {
        "invoices": "demo-orders-invoices"
    }
    assert set(workspace.physical_names.values_list("name", flat=True)) == {
        "demo-orders",
        "alias/irsa/demo-orders",
        "demo-orders-orders",
        "demo-orders-audit",
        "demo-orders-invoices",
    }


def test_a_name_a_legacy_workspace_holds_is_refused_to_another_legacy_workspace(
    developer, team, cluster
):
    # Single-dash joins are ambiguous: orders' table x-items and orders-x's table items are
    # both demo-orders-x-items. The claims keep the first holder's.
    workspace = legacy_orders(developer, team, cluster)
    table = {"kind": "dynamodb_table", "name": "x-items", "access": "read"}
    change = change_orders(developer, workspace, [*RESOURCES, table])
    change_request_submit(actor=developer, change_request=change)

    other = register_orders(
        developer, team, cluster, name="orders-x", service_accounts=["orders-x"]
    )
    other.status = ChangeStatus.APPLIED
    other.save(update_fields=["status"])
    Workspace.objects.create(
        microservice=other.microservice, cluster=cluster, name_scheme=NameScheme.LEGACY
    )
    with pytest.raises(SpecError) as exc:
        change_request_create(
            actor=developer,
            microservice=other.microservice,
            kind=ChangeKind.CHANGE,
            spec={
                "namespace": "shop",
                "service_accounts": ["orders-x"],
                "resources": [{"kind": "dynamodb_table", "name": "items", "access": "read"}],
                "clusters": ["demo"],
            },
            justification="items",
        )
    [message] = exc.value.errors["resources[0].name"]
    assert "'demo-orders-x-items' is held by microservice 'orders'" in message


@pytest.mark.django_db(transaction=True)
def test_migrating_over_an_existing_workspace_keeps_its_names(developer, team, cluster):
    """The real migration run over a database that already holds an applied workspace."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    change = register_orders(developer, team, cluster)
    workspace = Workspace.objects.create(
        microservice=change.microservice,
        cluster=cluster,
        status=WorkspaceStatus.APPLIED,
        role_arn="arn:aws:iam::111122223333:role/irsa/demo-orders",
        kms_alias="alias/irsa/demo-orders",
        resource_arns={
            "dynamodb_table/orders": "arn:aws:dynamodb:eu-west-1:1:table/demo-orders-orders"
        },
    )
    run = Run.objects.create(
        workspace=workspace, kind=RunKind.APPLY, status=RunStatus.SUCCEEDED, spec={"x": 1}
    )
    MigrationExecutor(connection).migrate([("provisioning", "0004_review_verification_recovery")])
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest schema

    workspace.refresh_from_db()
    assert workspace.name_scheme == NameScheme.LEGACY
    assert Run.objects.get(pk=run.pk).spec == {"x": 1, "name_scheme": 1}
    assert set(workspace.physical_names.values_list("kind", "name")) == {
        ("iam_role", "demo-orders"),
        ("kms_alias", "alias/irsa/demo-orders"),
        ("dynamodb_table", "demo-orders-orders"),
    }
    other = register_orders(
        developer, team, cluster, name="billing", service_accounts=["billing"]
    ).microservice
    assert Workspace.objects.create(microservice=other, cluster=cluster).name_scheme == 2
