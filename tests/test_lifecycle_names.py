"""Issue 10 without AWS: names claimed and freed, the validation holes closed, and a destroy plan
that knows what a failed first apply created. Alice (developer) registers; Olga is an outsider."""

import json
import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from provisioning.iam.spec import SpecError, parse_workspace_spec
from provisioning.models import (
    ChangeKind,
    Microservice,
    PhysicalName,
    Run,
    RunKind,
    RunStatus,
    Workspace,
    WorkspaceStatus,
)
from provisioning.services.changes import change_request_create, change_request_submit
from provisioning.services.names import physical_names_claim, physical_names_keep_only
from provisioning.specs import workspace_spec_data
from tests.factories import RESOURCES, register_orders
from tests.test_api import REGISTER, post

pytestmark = pytest.mark.django_db


def submitted_orders(developer, team, cluster) -> Workspace:
    change = register_orders(developer, team, cluster)
    change_request_submit(actor=developer, change_request=change)
    return Workspace.objects.get(microservice=change.microservice, cluster=cluster)


class TestPhysicalNames:
    def test_a_submitted_plan_claims_every_name(self, developer, team, cluster):
        workspace = submitted_orders(developer, team, cluster)
        assert set(workspace.physical_names.values_list("kind", "name")) == {
            ("iam_role", "demo--orders"),
            ("kms_alias", "alias/irsa/demo--orders"),
            ("dynamodb_table", "demo--orders--orders"),
            ("s3_bucket", "demo--orders--invoices"),
        }

    def test_a_held_name_is_refused_at_validation_until_the_destroy_is_applied(
        self, client, developer, team, cluster
    ):
        workspace = submitted_orders(developer, team, cluster)
        Microservice.objects.filter(pk=workspace.microservice_id).update(
            decommissioned_at=timezone.now()
        )
        client.force_login(developer)
        response = post(client, reverse("api-microservices"), REGISTER)
        assert response.status_code == 400
        [message] = response.json()["errors"]["resources[0].name"]
        assert "'demo--orders--orders' is held by microservice 'orders'" in message
        assert "until its decommission is applied" in message

        physical_names_keep_only(workspace_id=workspace.pk, spec=None)  # the destroy applied
        response = post(client, reverse("api-microservices"), REGISTER)
        assert response.status_code == 201
        assert Microservice.objects.filter(name="orders").count() == 2
        detail = client.get(reverse("api-microservice-detail", args=["orders"])).json()
        assert detail["decommissioned_at"] is None  # the live one is shown

    def test_a_name_kept_from_before_is_refused_with_its_holder(
        self, client, developer, team, cluster, outsider
    ):
        other = register_orders(
            developer, team, cluster, name="billing", service_accounts=["billing"]
        ).microservice
        workspace = Workspace.objects.create(microservice=other, cluster=cluster)
        PhysicalName.objects.create(
            workspace=workspace, kind="s3_bucket", name="demo--orders--invoices"
        )
        client.force_login(developer)
        response = post(client, reverse("api-microservices"), REGISTER)
        assert response.status_code == 400
        assert (
            "held by microservice 'billing' in cluster 'demo'"
            in (response.json()["errors"]["resources[1].name"][0])
        )

    def test_a_live_name_stays_unique(self, client, developer, team, cluster):
        register_orders(developer, team, cluster)
        client.force_login(developer)
        response = post(client, reverse("api-microservices"), REGISTER)
        assert response.status_code == 400
        assert "already exists" in response.json()["errors"]["microservice"][0]


class TestValidationHoles:
    url = reverse("api-microservices")

    def test_sort_key_equal_to_partition_key_is_a_400(self, client, developer, cluster):
        table = {
            **RESOURCES[0],
            "settings": {
                "partition_key": {"name": "id", "type": "S"},
                "sort_key": {"name": "id", "type": "S"},
            },
        }
        client.force_login(developer)
        response = post(client, self.url, {**REGISTER, "resources": [table]})
        assert response.status_code == 400
        assert (
            "is the partition key"
            in (response.json()["errors"]["resources[0].settings.sort_key.name"][0])
        )

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("resources", [{**RESOURCES[0], "name": "orders\n"}]),
            ("namespace", "shop\x00"),
            ("justification", "why\x00"),
        ],
    )
    def test_newlines_in_names_and_nul_anywhere_are_400s(
        self, client, developer, cluster, field, value
    ):
        client.force_login(developer)
        response = post(client, self.url, {**REGISTER, field: value})
        assert response.status_code == 400
        assert response.json()["errors"]
        assert not Microservice.objects.exists()

    def test_other_control_characters_in_free_text_are_400s(self, client, developer, cluster):
        client.force_login(developer)
        response = post(client, self.url, {**REGISTER, "justification": "why\x1b[31m"})
        assert response.status_code == 400
        assert "control character" in response.json()["errors"]["justification"][0]

    def test_nul_in_a_query_parameter_is_a_400(self, client, developer, cluster):
        client.force_login(developer)
        response = client.get(reverse("api-change-requests"), {"microservice": "or\x00ders"})
        assert response.status_code == 400
        assert "control character" in response.json()["errors"]["address"][0]
        page = client.get(reverse("home"), {"q": "\x00"})
        assert page.status_code == 400

    def test_json_nested_thousands_deep_is_a_400(self, client, developer, cluster):
        client.force_login(developer)
        body = '{"name": ' + "[" * 5000 + "]" * 5000 + "}"
        response = client.post(self.url, body, content_type="application/json")
        assert response.status_code == 400  # in the API's one error shape, keyed on the body
        assert any("nested deeper" in m for m in response.json()["errors"]["body"])

    def test_an_oversize_body_is_a_413(self, client, developer, cluster, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        client.force_login(developer)
        body = json.dumps({**REGISTER, "justification": "x" * 2000})
        response = client.post(self.url, body, content_type="application/json")
        assert response.status_code == 413
        assert "larger than 1000 bytes" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_give_one_201_and_clean_400s(developer, cluster):
    barrier, statuses = threading.Barrier(8), []

    def register() -> None:
        client = Client()
        client.force_login(developer)
        barrier.wait()
        try:
            statuses.append(post(client, reverse("api-microservices"), REGISTER).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [400] * 7
    assert Microservice.objects.filter(name="orders").count() == 1


def test_decommission_after_a_failed_first_apply_plans_with_the_attempted_spec(
    developer, team, cluster
):
    change = register_orders(developer, team, cluster)
    microservice = change.microservice
    workspace = Workspace.objects.create(
        microservice=microservice, cluster=cluster, status=WorkspaceStatus.FAILED
    )
    attempted = workspace_spec_data(
        microservice="orders",
        namespace="shop",
        service_accounts=["orders"],
        resources=RESOURCES,
        cluster=cluster,
        name_scheme=2,
    )
    Run.objects.create(
        workspace=workspace, kind=RunKind.APPLY, status=RunStatus.FAILED, spec=attempted
    )
    change.status = "cancelled"
    change.save(update_fields=["status"])
    decommission = change_request_create(
        actor=developer,
        microservice=microservice,
        kind=ChangeKind.DECOMMISSION,
        spec={"namespace": "shop", "service_accounts": ["orders"], "resources": [], "clusters": []},
        justification="retired",
    )
    [run] = change_request_submit(actor=developer, change_request=decommission)
    assert run.spec == attempted
    assert Run.objects.get(pk=run.pk).destroy_plan


def test_a_claim_race_is_a_spec_error_not_an_integrity_error(developer, team, cluster):
    workspace = submitted_orders(developer, team, cluster)
    other = register_orders(
        developer, team, cluster, name="billing", service_accounts=["billing"]
    ).microservice
    theirs = Workspace.objects.create(microservice=other, cluster=cluster)
    spec = parse_workspace_spec(Run.objects.filter(workspace=workspace).first().spec)
    with pytest.raises(SpecError) as exc:
        physical_names_claim(workspace=theirs, spec=spec)
    assert "held by microservice 'orders'" in str(exc.value)


def test_tables_in_production_clusters_are_protected_by_default(developer, team):
    from tests.factories import ClusterFactory

    prod = ClusterFactory(name="prod-eu", environment="prod")
    dev = ClusterFactory(name="dev-eu", environment="dev")
    table = {"kind": "dynamodb_table", "name": "orders", "access": "read"}
    protected = workspace_spec_data(
        microservice="orders",
        namespace="shop",
        service_accounts=["o"],
        resources=[table],
        cluster=prod,
        name_scheme=2,
    )
    assert protected["resources"][0]["settings"]["deletion_protection"] is True
    assert protected["resources"][0]["settings"]["point_in_time_recovery"] is True
    plain = workspace_spec_data(
        microservice="orders",
        namespace="shop",
        service_accounts=["o"],
        resources=[table],
        cluster=dev,
        name_scheme=2,
    )
    assert plain["resources"][0]["settings"]["deletion_protection"] is False
    assert plain["resources"][0]["settings"]["point_in_time_recovery"] is True  # backups stay on
    asked = {**table, "settings": {"point_in_time_recovery": False}}
    dev_asked = workspace_spec_data(
        microservice="orders",
        namespace="shop",
        service_accounts=["o"],
        resources=[asked],
        cluster=dev,
        name_scheme=2,
    )
    assert dev_asked["resources"][0]["settings"]["point_in_time_recovery"] is False
    explicit = {**table, "settings": {"deletion_protection": False}}
    chosen = workspace_spec_data(
        microservice="orders",
        namespace="shop",
        service_accounts=["o"],
        resources=[explicit],
        cluster=prod,
        name_scheme=2,
    )
    assert chosen["resources"][0]["settings"]["deletion_protection"] is False
    assert parse_workspace_spec(protected).resources[0].settings["deletion_protection"] is True
    assert parse_workspace_spec(protected).resources[0].settings["point_in_time_recovery"] is True
