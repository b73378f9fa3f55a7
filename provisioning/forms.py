"""HTML forms. They only shape input; the services validate the spec and their ``SpecError``
messages are put back next to the field that caused them (``SpecEditor.add_spec_errors``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import QueryDict

from provisioning.iam.spec import DYNAMODB_BILLING_MODES, DYNAMODB_KEY_TYPES
from provisioning.models import AccessLevel, Cluster, ResourceKind, Team
from provisioning.validation import control_character, control_character_message

KEY_TYPES = [(t, t) for t in DYNAMODB_KEY_TYPES]
BILLING_MODES = [(m, m) for m in DYNAMODB_BILLING_MODES]
# A table's protection flags: unset follows the cluster (on in prod), as in a spec file.
PROTECTION_CHOICES = [("", "cluster default"), ("on", "on"), ("off", "off")]
PROTECTION_FLAGS = ("deletion_protection", "point_in_time_recovery")
FORMSET_PREFIX = "resources"
_RESOURCE_PATH = re.compile(r"^resources\[(\d+)\](?:\.(.*))?$")


class RefuseControlCharactersMixin:
    """Every field's raw input is checked for NUL and other control characters before the field
    (or a query behind it) sees it; only text areas (multi-line free text) may hold tabs and line
    breaks. Every form of the portal has it (tests/test_control_characters.py checks them all)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():  # type: ignore[attr-defined]
            # the form's own copy of the field: the class's fields are untouched
            field.clean = _refusing_control_characters(
                field.clean, multiline=isinstance(field.widget, forms.Textarea)
            )


def _refusing_control_characters(clean: Callable[..., Any], *, multiline: bool) -> Callable:
    def checked(value: Any, *args: Any) -> Any:
        for item in value if isinstance(value, list | tuple) else [value]:
            if code_point := control_character(item, multiline=multiline):
                raise ValidationError(
                    control_character_message(code_point), code="control_characters"
                )
        return clean(value, *args)

    return checked


class CommaSeparatedField(forms.CharField):
    """``"orders, orders-worker"`` → ``["orders", "orders-worker"]``; names are checked later."""

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list | tuple):
            return [str(v).strip() for v in value if str(v).strip()]
        text = super().to_python(value)
        return [part.strip() for part in text.split(",") if part.strip()]

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list | tuple) else value


class SpecForm(RefuseControlCharactersMixin, forms.Form):
    """What every proposal has; clusters and justification are checked by the services so their
    messages are the ones the user sees, in the UI and in the API alike."""

    namespace = forms.CharField(max_length=63, help_text="Kubernetes namespace of the pods.")
    service_accounts = CommaSeparatedField(
        max_length=1000, help_text="Kubernetes service account names, comma-separated."
    )
    clusters = forms.ModelMultipleChoiceField(
        queryset=Cluster.objects.order_by("name"),
        to_field_name="name",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Why the service needs this access; reviewers read it.",
    )


class RegisterForm(SpecForm):
    name = forms.CharField(max_length=63, help_text="DNS-1123 label, e.g. orders-api.")
    team = forms.ModelChoiceField(queryset=Team.objects.none(), to_field_name="name")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    field_order = ["name", "team", "namespace", "service_accounts", "clusters"]

    def __init__(self, *args: Any, teams: QuerySet[Team], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        if len(teams) == 1 and not self.is_bound:
            self.fields["team"].initial = teams[0].name


class ResourceForm(RefuseControlCharactersMixin, forms.Form):
    """One resource row. Initials equal the first choices so an untouched extra row is empty."""

    kind = forms.ChoiceField(choices=ResourceKind.choices, initial=ResourceKind.DYNAMODB_TABLE)
    name = forms.CharField(max_length=63)
    access = forms.ChoiceField(choices=AccessLevel.choices, initial=AccessLevel.READ)
    partition_key_name = forms.CharField(max_length=255, required=False, initial="pk")
    partition_key_type = forms.ChoiceField(choices=KEY_TYPES, initial="S")
    sort_key_name = forms.CharField(
        max_length=255, required=False, widget=forms.TextInput(attrs={"placeholder": "none"})
    )
    sort_key_type = forms.ChoiceField(choices=KEY_TYPES, initial="S")
    billing_mode = forms.ChoiceField(choices=BILLING_MODES, initial="PAY_PER_REQUEST")
    read_capacity = forms.IntegerField(
        required=False, min_value=0, widget=forms.NumberInput(attrs={"placeholder": "read"})
    )
    write_capacity = forms.IntegerField(
        required=False, min_value=0, widget=forms.NumberInput(attrs={"placeholder": "write"})
    )
    deletion_protection = forms.ChoiceField(choices=PROTECTION_CHOICES, required=False)
    point_in_time_recovery = forms.ChoiceField(choices=PROTECTION_CHOICES, required=False)
    versioning = forms.BooleanField(required=False, initial=True)

    def to_resource(self) -> dict[str, Any]:
        d = self.cleaned_data
        if d["kind"] == ResourceKind.S3_BUCKET:
            settings: dict[str, Any] = {"versioning": d["versioning"]}
        else:
            settings = {"billing_mode": d["billing_mode"]}
            if d["partition_key_name"]:
                settings["partition_key"] = {
                    "name": d["partition_key_name"],
                    "type": d["partition_key_type"],
                }
            if d["sort_key_name"]:
                settings["sort_key"] = {"name": d["sort_key_name"], "type": d["sort_key_type"]}
            for cap in ("read_capacity", "write_capacity"):
                # Passed whenever given: the service says when one is missing or not allowed.
                if d[cap] is not None or d["billing_mode"] == "PROVISIONED":
                    settings[cap] = d[cap]
            for flag in PROTECTION_FLAGS:
                if d[flag]:
                    settings[flag] = d[flag] == "on"
        return {"kind": d["kind"], "name": d["name"], "access": d["access"], "settings": settings}


def resource_initial(resource: dict[str, Any]) -> dict[str, Any]:
    """A spec resource as the initial values of a row."""
    settings = resource.get("settings") or {}
    partition = settings.get("partition_key") or {"name": "pk", "type": "S"}
    sort = settings.get("sort_key") or {}
    return {
        "kind": resource.get("kind"),
        "name": resource.get("name"),
        "access": resource.get("access"),
        "partition_key_name": partition.get("name"),
        "partition_key_type": partition.get("type", "S"),
        "sort_key_name": sort.get("name", ""),
        "sort_key_type": sort.get("type", "S"),
        "billing_mode": settings.get("billing_mode", "PAY_PER_REQUEST"),
        "read_capacity": settings.get("read_capacity"),
        "write_capacity": settings.get("write_capacity"),
        "versioning": settings.get("versioning", True),
        **{
            flag: {True: "on", False: "off"}.get(settings.get(flag), "")
            for flag in PROTECTION_FLAGS
        },
    }


ResourceFormSet = forms.formset_factory(ResourceForm, extra=1, can_delete=True, max_num=20)

# Where a SpecError path lands in the resource row.
_SETTINGS_FIELDS = {
    "settings.partition_key.type": "partition_key_type",
    "settings.partition_key": "partition_key_name",
    "settings.sort_key.type": "sort_key_type",
    "settings.sort_key": "sort_key_name",
    "settings.billing_mode": "billing_mode",
    "settings.read_capacity": "read_capacity",
    "settings.write_capacity": "write_capacity",
    "settings.versioning": "versioning",
    "settings.deletion_protection": "deletion_protection",
    "settings.point_in_time_recovery": "point_in_time_recovery",
}


def _row_field(sub: str | None) -> str | None:
    if sub in ("kind", "name", "access"):
        return sub
    for prefix, field in _SETTINGS_FIELDS.items():
        if sub is not None and sub.startswith(prefix):
            return field
    return None


class SpecEditor:
    """A proposal form plus its resource rows, validated together, with service errors mapped
    back: ``resources[1].name`` is the second non-empty row's name field."""

    def __init__(self, form: SpecForm, formset: forms.BaseFormSet):
        self.form = form
        self.formset = formset
        self.resource_errors: list[str] = []
        self._rows: list[int] = []  # form index of each resource in the spec, in order

    @classmethod
    def build(
        cls,
        form_class: type[SpecForm],
        data: QueryDict | None = None,
        initial: dict[str, Any] | None = None,
        resources: list[dict[str, Any]] | None = None,
        **form_kwargs: Any,
    ) -> SpecEditor:
        form = form_class(data, initial=initial, **form_kwargs)
        rows = [resource_initial(r) for r in resources or []]
        return cls(form, ResourceFormSet(data, initial=rows or None, prefix=FORMSET_PREFIX))

    def with_extra_row(self, form_class: type[SpecForm], **form_kwargs: Any) -> SpecEditor:
        """The same input, unbound (no error messages yet), with one more empty row."""
        initial = {name: self.form[name].value() for name in self.form.fields}
        rows = [
            {name: f[name].value() for name in f.fields if name != "DELETE"}
            for f in self.formset.forms
            if f.has_changed() and not f["DELETE"].value()
        ]
        form = form_class(initial=initial, **form_kwargs)
        return SpecEditor(form, ResourceFormSet(initial=rows or None, prefix=FORMSET_PREFIX))

    def is_valid(self) -> bool:
        form_ok, rows_ok = self.form.is_valid(), self.formset.is_valid()
        return form_ok and rows_ok

    def resources(self) -> list[dict[str, Any]]:
        resources, self._rows = [], []
        for index, row in enumerate(self.formset.forms):
            if not row.has_changed() or row.cleaned_data.get("DELETE"):
                continue
            resources.append(row.to_resource())
            self._rows.append(index)
        return resources

    def spec(self) -> dict[str, Any]:
        """The spec as ``change_request_create`` takes it (clusters by name)."""
        d = self.form.cleaned_data
        return {
            "namespace": d["namespace"],
            "service_accounts": d["service_accounts"],
            "resources": self.resources(),
            "clusters": [c.name for c in d["clusters"]],
        }

    def add_spec_errors(self, errors: dict[str, list[str]]) -> None:
        for path, messages in errors.items():
            match = _RESOURCE_PATH.match(path)
            if match and int(match.group(1)) < len(self._rows):
                row = self.formset.forms[self._rows[int(match.group(1))]]
                field = _row_field(match.group(2))
                row.add_error(field, messages if field else [f"{path}: {m}" for m in messages])
            elif path == "resources" or path.startswith("resources"):
                self.resource_errors.extend(messages)
            else:
                self._add_form_error(path, messages)

    def _add_form_error(self, path: str, messages: list[str]) -> None:
        top = re.split(r"[.\[]", path, maxsplit=1)[0]
        field = {"microservice": "name", "cluster": "clusters"}.get(top, top)
        if field in self.form.fields:
            self.form.add_error(field, messages)
        else:
            self.form.add_error(None, [f"{path}: {m}" if path else m for m in messages])


class DecommissionForm(RefuseControlCharactersMixin, forms.Form):
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Why the service's role, key and resources can be destroyed.",
    )


class DataLossConfirmForm(RefuseControlCharactersMixin, forms.Form):
    confirm_name = forms.CharField(
        max_length=63,
        required=False,  # the service says what to type when it is missing or wrong
        label="Type the service's name to confirm",
    )


class ReviewForm(RefuseControlCharactersMixin, forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    # "run_id:sha256,..." of the plans on the page: approval binds to exactly those.
    plans = forms.CharField(widget=forms.HiddenInput, required=False)

    def plan_hashes(self) -> dict[str, str]:
        pairs = (p.split(":", 1) for p in self.cleaned_data["plans"].split(",") if ":" in p)
        return {run_id: sha for run_id, sha in pairs}
