"""NUL and other control characters are refused with a 400 naming the field, in every string field
of every write endpoint of the API (enumerated from the published schema, so a new endpoint or
field is tested without anyone listing it), of every form of the portal, nested in spec bodies
(JSON and YAML) and in query parameters — never a 500 from PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.http import QueryDict
from django.test import RequestFactory
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from provisioning import forms as portal_forms
from provisioning import views_pages
from provisioning.models import ChangeRequest, Microservice, Team
from provisioning.notifications.models import WebhookSubscription
from provisioning.services.tokens import api_token_create
from tests.test_api import REGISTER
from tests.test_ui import applied, change  # noqa: F401  (fixtures)

CONTROL = ["\x00", "\x07"]
WRITE_METHODS = ("post", "put", "patch")


def _schema() -> dict[str, Any]:
    generator = SchemaGenerator(title="IRSA Portal API", version="1")
    return json.loads(OpenApiJsonRenderer().render(generator.get_schema(request=None, public=True)))


SCHEMA = _schema()


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    for combined in ("allOf", "oneOf", "anyOf"):
        if combined in node:
            return _resolve(next(n for n in node[combined] if _resolve(n).get("type") != "null"))
    return node


def string_fields(node: dict[str, Any], path: str = "") -> list[str]:
    """Paths (``resources[0].settings.partition_key.name``) of every writable string in a body."""
    node = _resolve(node)
    if node.get("readOnly"):
        return []
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        found = []
        for name, child in node.get("properties", {}).items():
            found += string_fields(child, f"{path}.{name}" if path else name)
        if isinstance(node.get("additionalProperties"), dict):
            found += string_fields(node["additionalProperties"], f"{path}.any")
        return found
    if kind == "array":
        return string_fields(node["items"], f"{path}[0]")
    return [path] if kind == "string" or "enum" in node else []


def write_operations() -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        (method, path, operation.get("requestBody"))
        for path, item in SCHEMA["paths"].items()
        for method, operation in item.items()
        if method in WRITE_METHODS
    ]


CASES = [
    pytest.param(method, path, field, char, id=f"{method} {path} {field} {char!r}")
    for method, path, body in write_operations()
    if body is not None
    for field in string_fields(body["content"]["application/json"]["schema"])
    for char in CONTROL
]


def body_with(field: str, value: str) -> Any:
    """The smallest body that holds ``value`` at ``field`` (``a[0].b`` → {"a": [{"b": value}]})."""
    steps = field.replace("[0]", ".[0]").split(".")
    body: Any = value
    for step in reversed(steps):
        body = [body] if step == "[0]" else {step: body}
    return body


def test_every_write_endpoint_is_enumerated():
    """The walk below sees the endpoints (a schema change cannot silently empty it)."""
    paths = {path for _, path, _ in write_operations()}
    assert "/api/v1/microservices/" in paths
    assert "/api/v1/microservices/{name}/spec/" in paths
    fields = {case.values[2] for case in CASES if case.values[1] == "/api/v1/microservices/"}
    assert {"name", "justification", "resources[0].name", "clusters[0]"} <= fields
    assert "resources[0].settings.partition_key.name" in fields
    # An operation without a body must have nothing to check (an action such as submit).
    for _method, path, body in write_operations():
        if body is None:
            assert path.endswith(("/submit/", "/replan/", "/discard/", "/cancel/", "/verify/"))


@pytest.fixture
def world(developer, team, cluster, applied) -> dict[str, Any]:  # noqa: F811
    hook = WebhookSubscription.objects.create(
        team=team, url="https://hooks.example/x", events=["run.finished"], secret="s" * 32
    )
    change_request = ChangeRequest.objects.filter(microservice=applied).first()
    return {"id": change_request.pk, "name": applied.name, "cluster": cluster.name, "hook": hook.pk}


def _url(path: str, world: dict[str, Any]) -> str:
    ident = world["hook"] if path.startswith("/api/v1/webhooks/") else world["id"]
    return path.format(id=ident, name=world["name"], cluster=world["cluster"])


@pytest.mark.parametrize(("method", "path", "field", "char"), CASES)
def test_a_control_character_in_any_string_field_is_a_400_naming_it(
    client, world, developer, method, path, field, char
):
    token = api_token_create(actor=developer, name="test")[1]
    count = Microservice.objects.count(), ChangeRequest.objects.count()
    response = getattr(client, method)(
        _url(path, world),
        json.dumps(body_with(field, f"a{char}b")),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    code_point = f"U+{ord(char):04X}"
    assert any(code_point in m and "control character" in m for m in errors[field]), errors
    assert (Microservice.objects.count(), ChangeRequest.objects.count()) == count


class TestApiDetails:
    def test_multi_line_free_text_keeps_its_line_breaks_and_tabs(self, client, developer, cluster):
        client.force_login(developer)
        body = {**REGISTER, "justification": "Orders:\n\tread the invoices\r\n"}
        response = client.post(
            reverse("v1:api-microservices"), body, content_type="application/json"
        )
        assert response.status_code == 201, response.content
        body = {**REGISTER, "name": "refunds", "justification": "bell\x07"}
        response = client.post(
            reverse("v1:api-microservices"), body, content_type="application/json"
        )
        assert response.status_code == 400
        assert "U+0007" in response.json()["errors"]["justification"][0]

    def test_a_line_break_in_a_single_line_field_is_refused(self, client, developer, cluster):
        client.force_login(developer)
        body = {**REGISTER, "namespace": "shop\n"}
        response = client.post(
            reverse("v1:api-microservices"), body, content_type="application/json"
        )
        assert response.status_code == 400
        assert "U+000A" in response.json()["errors"]["namespace"][0]

    def test_a_key_with_a_control_character_is_named(self, client, developer, cluster):
        client.force_login(developer)
        resource = {**REGISTER["resources"][0], "settings": {"versio\x00ning": True}}
        body = {**REGISTER, "resources": [resource]}
        response = client.post(
            reverse("v1:api-microservices"), body, content_type="application/json"
        )
        assert response.status_code == 400
        assert "field name" in response.json()["errors"]["resources[0].settings.versio\x00ning"][0]

    def test_a_form_encoded_body_is_checked_too(self, client, developer, cluster):
        client.force_login(developer)
        response = client.post(reverse("v1:api-microservices"), {"name": "ord\x07ers"})
        assert response.status_code == 400
        assert "U+0007" in response.json()["errors"]["name"][0]

    def test_a_yaml_spec_body_is_checked_nested(self, client, developer, team, cluster):
        client.force_login(developer)
        yaml_body = (
            f"team: {team.name}\nnamespace: shop\nservice_accounts: [orders]\n"
            f"clusters: [{cluster.name}]\nresources:\n"
            '  - {kind: s3_bucket, name: "invo\\aices", access: read}\n'
        )
        response = client.put(
            reverse("v1:api-microservice-spec", args=["refunds"]),
            yaml_body,
            content_type="application/yaml",
        )
        assert response.status_code == 400
        assert "U+0007" in response.json()["errors"]["resources[0].name"][0]
        assert not Microservice.objects.exists()

    @pytest.mark.parametrize("char", CONTROL)
    def test_query_parameters_are_400s_never_500s(self, client, developer, cluster, char):
        client.force_login(developer)
        for name in ("api-change-requests", "api-microservices", "api-runs", "api-audit-events"):
            response = client.get(reverse(f"v1:{name}"), {"microservice": f"or{char}ders"})
            assert response.status_code == 400, name
            assert "control character" in response.json()["errors"]["address"][0]
        for page in ("home", "inventory", "audit"):
            assert client.get(reverse(page), {"q": f"x{char}"}).status_code == 400, page


def test_the_spec_parser_names_nested_strings():
    from provisioning.iam.spec import SpecError, parse_workspace_spec

    with pytest.raises(SpecError) as caught:
        parse_workspace_spec(
            {
                "microservice": "orders",
                "namespace": "shop",
                "service_accounts": ["orders"],
                "cluster": {"name": "demo\x1f"},
                "resources": [{"settings": {"partition_key": {"name": "p\x7fk", "type": "S"}}}],
            }
        )
    assert set(caught.value.errors) == {
        "cluster.name",
        "resources[0].settings.partition_key.name",
    }
    assert "U+007F" in caught.value.errors["resources[0].settings.partition_key.name"][0]


# --- Forms ---------------------------------------------------------------------------------------


def _portal_forms() -> list[type[forms.Form]]:
    found, stack = [], [forms.Form]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("provisioning"):
            found.append(cls)
    return sorted(found, key=lambda c: c.__qualname__)


FORM_CASES = [
    pytest.param(form, name, char, id=f"{form.__name__}.{name} {char!r}")
    for form in _portal_forms()
    for name, field in form.base_fields.items()
    # a checkbox's input is only ever "is it there": its text reaches nothing
    if not isinstance(field, forms.BooleanField)
    for char in CONTROL
]


def test_every_form_is_enumerated():
    names = {f.__name__ for f in _portal_forms()}
    assert {"RegisterForm", "ResourceForm", "DecommissionForm", "ReviewForm"} <= names
    assert views_pages.AuditFilterForm in _portal_forms()


@pytest.mark.parametrize(("form_class", "name", "char"), FORM_CASES)
def test_a_control_character_in_any_form_field_is_a_form_error(developer, form_class, name, char):
    data = QueryDict(mutable=True)
    data.setlist(name, [f"a{char}b"])
    kwargs: dict[str, Any] = {}
    if issubclass(form_class, portal_forms.RegisterForm):
        kwargs["teams"] = Team.objects.all()
    if issubclass(form_class, views_pages.ListFilterForm):
        kwargs["user"] = developer
    form = form_class(data, **kwargs)
    assert not form.is_valid()
    assert any(f"U+{ord(char):04X}" in m for m in form.errors[name]), form.errors


@pytest.mark.django_db
def test_a_text_area_keeps_its_line_breaks():
    form = portal_forms.DecommissionForm({"justification": "no longer used\r\n\tby anyone"})
    assert form.is_valid(), form.errors


def test_the_register_page_shows_the_error_instead_of_a_500(client, developer, team, cluster):
    client.force_login(developer)
    response = client.post(
        reverse("microservice-register"),
        {"name": "ord\x00ers", "team": team.name, "namespace": "shop", "service_accounts": "a"},
    )
    assert response.status_code in (200, 400)
    assert "control character (U+0000)" in response.content.decode()
    assert not Microservice.objects.exists()


@pytest.mark.parametrize("char", CONTROL)
def test_a_token_name_with_a_control_character_is_a_400(client, developer, char):
    """The profile page's token form is plain HTML: the service refuses the name."""
    client.force_login(developer)
    response = client.post(reverse("profile"), {"name": f"ci{char}", "days": "30"})
    assert response.status_code == 400
    assert f"U+{ord(char):04X}" in response.content.decode()


# --- Admin ---------------------------------------------------------------------------------------


def _admin_text_fields() -> list[Any]:
    """Every text input of every change form (and inline) the portal's admin registers."""
    request = RequestFactory().get("/admin/")
    request.user = User(is_staff=True, is_superuser=True)
    cases = []
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda i: i[0].__name__):
        if model._meta.app_label != "provisioning":
            continue
        form_classes = [model_admin.get_form(request)] + [
            inline.get_formset(request).form for inline in model_admin.get_inline_instances(request)
        ]
        for form_class in form_classes:
            for name, field in form_class.base_fields.items():
                if isinstance(field, forms.CharField):
                    cases.append(pytest.param(form_class, name, id=f"{form_class.__name__}.{name}"))
    return cases


ADMIN_CASES = _admin_text_fields()


def test_the_admin_forms_are_enumerated():
    names = {case.id.split(".")[1] for case in ADMIN_CASES}
    assert {"name", "account_id", "oidc_provider_arn", "namespace"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize(("form_class", "name"), ADMIN_CASES)
def test_a_control_character_in_an_admin_form_is_a_form_error(form_class, name):
    form = form_class({name: "a\x07b"})
    assert not form.is_valid()
    assert any("U+0007" in m for m in form.errors[name]), form.errors


def test_the_admin_shows_the_error_and_saves_nothing(client, django_user_model):
    staff = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(staff)
    response = client.post(reverse("admin:provisioning_team_add"), {"name": "pay\x01ments"})
    assert response.status_code == 200
    assert "control character (U+0001)" in response.content.decode()
    assert not Team.objects.exists()

    response = client.post(reverse("admin:provisioning_team_add"), {"name": "payments"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert list(Team.objects.values_list("name", flat=True)) == ["payments"]
