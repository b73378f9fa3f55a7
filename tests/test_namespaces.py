"""Namespace ownership: who may put a trust subject into which namespace, through the services
(the pages and the API call the same ones; tests/test_api.py checks the API's 400)."""

import pytest
from django.test import override_settings

from provisioning.iam.spec import SpecError
from provisioning.models import (
    ChangeRequest,
    Microservice,
    NamespaceOwnership,
    Team,
    Workspace,
    WorkspaceStatus,
)
from provisioning.services.changes import change_request_create
from tests.factories import RESOURCES, ClusterFactory
from tests.factories import register_orders as register


@pytest.fixture
def search(outsider) -> Team:
    return Team.objects.get(name="search")


def _make_live(change: ChangeRequest) -> Microservice:
    """What an apply leaves behind: an applied workspace in each target cluster."""
    service = change.microservice
    for cluster_name in change.spec["clusters"]:
        Workspace.objects.create(
            microservice=service,
            cluster_id=_cluster_pk(cluster_name),
            status=WorkspaceStatus.APPLIED,
        )
    ChangeRequest.objects.filter(pk=change.pk).update(status="applied")
    return service


def _cluster_pk(name: str) -> int:
    from provisioning.models import Cluster

    return Cluster.objects.get(name=name).pk


@pytest.mark.parametrize("namespace", ["kube-system", "default", "kube-public", "kube-node-lease"])
def test_system_namespaces_are_refused(developer, team, cluster, namespace):
    with pytest.raises(SpecError) as exc:
        register(developer, team, cluster, namespace=namespace, service_accounts=["aws-node"])
    assert "system namespace" in exc.value.errors["namespace"][0]
    assert not Microservice.objects.exists()


@override_settings(SYSTEM_NAMESPACES=["platform"])
def test_the_system_namespace_list_is_a_setting(developer, team, cluster):
    with pytest.raises(SpecError, match="'platform' is a system namespace"):
        register(developer, team, cluster, namespace="platform")
    assert register(developer, team, cluster, name="agent", namespace="kube-system")


def test_a_namespace_assigned_to_another_team_is_refused(
    developer, team, outsider, search, cluster
):
    NamespaceOwnership.objects.create(cluster=cluster, namespace="shop", team=team)
    with pytest.raises(SpecError) as exc:
        register(outsider, search, cluster, name="thief", service_accounts=["thief"])
    message = exc.value.errors["namespace"][0]
    assert "'shop' of cluster demo belongs to team payments" in message
    assert not Microservice.objects.filter(name="thief").exists()


def test_the_owning_team_and_other_clusters_are_allowed(developer, team, outsider, search, cluster):
    NamespaceOwnership.objects.create(cluster=cluster, namespace="shop", team=team)
    assert register(developer, team, cluster).microservice.namespace == "shop"
    elsewhere = ClusterFactory(name="other")
    change = register(outsider, search, elsewhere, name="catalog", service_accounts=["catalog"])
    assert change.spec["clusters"] == ["other"]


def test_an_assignment_wins_over_what_already_runs_there(
    developer, team, outsider, search, cluster
):
    _make_live(register(developer, team, cluster))
    NamespaceOwnership.objects.create(cluster=cluster, namespace="shop", team=search)
    change = register(outsider, search, cluster, name="catalog", service_accounts=["catalog"])
    assert change.microservice.team == search


def test_a_namespace_another_teams_live_service_runs_in_is_refused(
    developer, team, outsider, search, cluster
):
    _make_live(register(developer, team, cluster))
    with pytest.raises(SpecError) as exc:
        register(outsider, search, cluster, name="catalog", service_accounts=["catalog"])
    assert "belongs to team payments" in exc.value.errors["namespace"][0]


def test_a_destroyed_workspace_no_longer_claims_the_namespace(
    developer, team, outsider, search, cluster
):
    service = _make_live(register(developer, team, cluster))
    service.workspaces.update(status=WorkspaceStatus.DESTROYED)
    assert register(outsider, search, cluster, name="catalog", service_accounts=["catalog"])


def test_an_outsider_cannot_trust_shop_orders_asked_for_by_an_open_request(
    developer, team, outsider, search, cluster
):
    register(developer, team, cluster)  # a draft: nothing live yet, no owner assigned
    with pytest.raises(SpecError) as exc:
        register(outsider, search, cluster, name="thief", service_accounts=["orders"])
    message = exc.value.errors["service_accounts"][0]
    assert "'shop:orders' in cluster demo is already trusted by microservice orders" in message


def test_a_teammates_service_cannot_reuse_a_live_service_account(
    developer, teammate, team, cluster
):
    _make_live(register(developer, team, cluster))
    with pytest.raises(SpecError) as exc:
        register(teammate, team, cluster, name="billing", service_accounts=["billing", "orders"])
    assert "already trusted by microservice orders" in exc.value.errors["service_accounts"][0]
    assert register(teammate, team, cluster, name="billing", service_accounts=["billing"])


def test_a_change_request_is_checked_too(developer, team, outsider, search, cluster):
    other = register(outsider, search, ClusterFactory(name="other"), name="catalog")
    _make_live(other)
    spec = {
        "namespace": "kube-system",
        "service_accounts": ["aws-node"],
        "resources": RESOURCES[:1],
        "clusters": ["other"],
    }
    with pytest.raises(SpecError) as exc:
        change_request_create(
            actor=outsider,
            microservice=other.microservice,
            kind="change",
            spec=spec,
            justification="move",
        )
    assert "system namespace" in exc.value.errors["namespace"][0]
    register(developer, team, cluster)
    with pytest.raises(SpecError) as exc:
        change_request_create(
            actor=outsider,
            microservice=other.microservice,
            kind="change",
            spec={
                **spec,
                "namespace": "shop",
                "service_accounts": ["orders"],
                "clusters": ["demo"],
            },
            justification="move",
        )
    assert "already trusted by microservice orders" in exc.value.errors["service_accounts"][0]


def test_a_service_keeps_its_own_service_account_on_change(developer, team, cluster):
    service = _make_live(register(developer, team, cluster))
    change = change_request_create(
        actor=developer,
        microservice=service,
        kind="change",
        spec={
            "namespace": "shop",
            "service_accounts": ["orders"],
            "resources": RESOURCES[:1],
            "clusters": ["demo"],
        },
        justification="drop the table",
    )
    assert change.kind == "change"


@override_settings(DEBUG=True)
def test_seed_demo_gives_shop_of_demo_to_the_demo_team(db, capsys):
    from django.core.management import call_command

    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    row = NamespaceOwnership.objects.get()
    assert (row.cluster.name, row.namespace, row.team.name) == ("demo", "shop", "payments")


def test_admins_manage_namespace_ownership(admin_client, team, cluster):
    response = admin_client.post(
        "/admin/provisioning/namespaceownership/add/",
        {"cluster": cluster.pk, "namespace": "shop", "team": team.pk},
    )
    assert response.status_code == 302
    assert NamespaceOwnership.objects.get().team == team
    assert admin_client.get("/admin/provisioning/namespaceownership/").status_code == 200


def test_the_register_form_shows_the_refusal_on_its_field(client, outsider, search, team, cluster):
    from django.urls import reverse

    from tests.test_ui import register_post

    NamespaceOwnership.objects.create(cluster=cluster, namespace="shop", team=team)
    client.force_login(outsider)
    response = client.post(
        reverse("microservice-register"), register_post(team="search", name="thief")
    )
    assert response.status_code == 200
    errors = response.context["editor"].form.errors
    assert "belongs to team payments" in errors["namespace"][0]
    assert not Microservice.objects.exists()


def test_the_api_refuses_kube_system_aws_node(client, developer, cluster):
    from django.urls import reverse

    client.force_login(developer)
    body = {
        "name": "node-agent",
        "team": "payments",
        "namespace": "kube-system",
        "service_accounts": ["aws-node"],
        "resources": RESOURCES,
        "clusters": ["demo"],
        "justification": "wants the node's identity",
    }
    response = client.post(reverse("api-microservices"), body, content_type="application/json")
    assert response.status_code == 400
    assert "system namespace" in response.json()["errors"]["namespace"][0]
    assert not Microservice.objects.exists()
