import pytest
from django.urls import reverse

from tests.factories import register_orders


@pytest.fixture
def registered(developer, team, cluster):
    return register_orders(developer, team, cluster).microservice


def test_login_page_and_admin_answer(client):
    assert client.get(reverse("login")).status_code == 200
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.get(reverse("healthz")).json() == {"status": "ok"}


def test_home_requires_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_developer_sees_own_service_and_its_policies(client, developer, registered):
    client.force_login(developer)
    assert "orders" in client.get(reverse("home")).content.decode()
    page = client.get(reverse("microservice-detail", args=["orders"])).content.decode()
    assert "arn:aws:iam::123456789012:role/irsa/demo--orders" in page
    assert "sts:AssumeRoleWithWebIdentity" in page


def test_it_validates_ownership(client, outsider, registered):
    client.force_login(outsider)
    assert "orders" not in client.get(reverse("home")).content.decode()
    assert client.get(reverse("microservice-detail", args=["orders"])).status_code == 404


def test_reviewer_sees_every_service(client, reviewer, registered):
    client.force_login(reviewer)
    assert client.get(reverse("microservice-detail", args=["orders"])).status_code == 200
