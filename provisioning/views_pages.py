"""The everyday pages: the dashboard (home), the microservice list, the inventory of roles and
keys (with its CSV export) and the audit timelines. Thin: selectors decide what a user sees; these
parse the filters, page the rows and render them."""

from __future__ import annotations

import csv
from datetime import datetime, time
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from provisioning import selectors
from provisioning.forms import RefuseControlCharactersMixin
from provisioning.models import Microservice, Team, Workspace, WorkspaceStatus

PAGE_SIZE = 50
STATE_CHOICES = [("", "Any status"), *selectors.SERVICE_STATES.items()]
WORKSPACE_STATUS_CHOICES = [("", "Any status"), *WorkspaceStatus.choices]


class ListFilterForm(RefuseControlCharactersMixin, forms.Form):
    """Search and filters shared by the lists; every field is optional."""

    q = forms.CharField(required=False, max_length=100, label="Search")
    team = forms.ChoiceField(required=False)
    cluster = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        teams = Team.objects.order_by("name").values_list("name", flat=True)
        if not (user.is_staff or selectors.audit_can_see_all(user=user)):
            teams = teams.filter(members=user)
        clusters = selectors.cluster_list(user=user).values_list("name", flat=True)
        self.fields["team"].choices = [("", "Any team"), *((t, t) for t in teams)]
        self.fields["cluster"].choices = [("", "Any cluster"), *((c, c) for c in clusters)]


class MicroserviceFilterForm(ListFilterForm):
    status = forms.ChoiceField(required=False, choices=STATE_CHOICES)


class InventoryFilterForm(ListFilterForm):
    status = forms.ChoiceField(required=False, choices=WORKSPACE_STATUS_CHOICES)
    kind = forms.ChoiceField(
        required=False, choices=[("role", "IAM roles"), ("key", "KMS keys")], initial="role"
    )


def _cleaned(form: forms.Form) -> dict[str, Any]:
    """The filters. An invalid choice (a team that is not the user's, an unknown status) still
    filters, by its raw value, so the page shows "nothing matches" next to the form's error
    instead of silently showing everything."""
    form.is_valid()
    values = {}
    for name, field in form.fields.items():
        if name in form.errors:
            raw = form.data.get(name, "")
            values[name] = raw[:100] if isinstance(field, forms.ChoiceField) else ""
        else:
            values[name] = form.cleaned_data.get(name) or ""
    return values


def _page(request: HttpRequest, rows: QuerySet[Any]) -> Page:
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


# --- Dashboard and lists -----------------------------------------------------------------------


def _with_workspaces(qs: QuerySet[Microservice]) -> QuerySet[Microservice]:
    workspaces = Workspace.objects.select_related("cluster").order_by("cluster__name")
    return qs.prefetch_related(Prefetch("workspaces", queryset=workspaces))


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    board = selectors.dashboard_for_user(user=request.user)
    context = {"board": board, "states": selectors.SERVICE_STATES}
    return render(request, "provisioning/dashboard.html", context)


@login_required
@require_GET
def microservice_list(request: HttpRequest) -> HttpResponse:
    form = MicroserviceFilterForm(request.GET, user=request.user)
    f = _cleaned(form)
    filters = selectors.MicroserviceFilters(
        team=f["team"], cluster=f["cluster"], state=f["status"], search=f["q"]
    )
    rows = selectors.microservice_rows_for_user(user=request.user, filters=filters)
    page = _page(request, _with_workspaces(rows.select_related("team")))
    context = {"form": form, "page": page, "query": _query_without_page(request)}
    return render(
        request,
        "provisioning/microservice_list.html",
        {**context, "states": selectors.SERVICE_STATES},
    )


# --- Inventory ---------------------------------------------------------------------------------


def _inventory(request: HttpRequest) -> tuple[InventoryFilterForm, str, QuerySet[Workspace]]:
    form = InventoryFilterForm(request.GET, user=request.user)
    f = _cleaned(form)
    filters = selectors.InventoryFilters(
        team=f["team"], cluster=f["cluster"], status=f["status"], search=f["q"]
    )
    kind = f["kind"] if f["kind"] in selectors.INVENTORY_KINDS else "role"
    return form, kind, selectors.workspace_inventory_for_user(user=request.user, filters=filters)


@login_required
@require_GET
def inventory(request: HttpRequest) -> HttpResponse:
    form, kind, workspaces = _inventory(request)
    page = _page(request, workspaces)
    rows = selectors.inventory_rows(workspaces=page.object_list, kind=kind)
    context = {"form": form, "kind": kind, "page": page, "rows": rows}
    return render(
        request, "provisioning/inventory.html", {**context, "query": _query_without_page(request)}
    )


@login_required
@require_GET
def inventory_csv(request: HttpRequest) -> HttpResponse:
    """Every row matching the filters (not only one page), in ``INVENTORY_COLUMNS`` order."""
    _form, kind, workspaces = _inventory(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="irsa-inventory-{kind}s.csv"'
    writer = csv.writer(response)
    writer.writerow(selectors.INVENTORY_COLUMNS)
    for row in selectors.inventory_rows(workspaces=workspaces.iterator(), kind=kind):
        writer.writerow([_csv_value(row[c]) for c in selectors.INVENTORY_COLUMNS])
    return response


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    # A cell starting with a formula character would run as a formula in a spreadsheet.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


# --- Audit -------------------------------------------------------------------------------------


class AuditFilterForm(RefuseControlCharactersMixin, forms.Form):
    action = forms.CharField(
        required=False, max_length=64, help_text="exact, or a prefix ending in '.'"
    )
    actor = forms.CharField(required=False, max_length=150)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


def _audit_filters(form: AuditFilterForm) -> selectors.AuditFilters:
    f = _cleaned(form)
    since = f["since"] or None
    if since is not None:
        since = timezone.make_aware(datetime.combine(since, time.min))
    return selectors.AuditFilters(action=f["action"], actor=f["actor"], since=since)


@login_required
@require_GET
def audit_global(request: HttpRequest) -> HttpResponse:
    if not selectors.audit_can_see_all(user=request.user):
        raise Http404("No such page.")
    form = AuditFilterForm(request.GET)
    events = selectors.audit_event_list_for_user(user=request.user, filters=_audit_filters(form))
    context = {"form": form, "page": _page(request, events), "query": _query_without_page(request)}
    return render(request, "provisioning/audit.html", context)


@login_required
@require_GET
def microservice_audit(request: HttpRequest, name: str) -> HttpResponse:
    try:
        service = selectors.microservice_list_for_user(user=request.user).get(name=name)
    except Microservice.DoesNotExist:
        raise Http404("No such microservice.") from None
    form = AuditFilterForm(request.GET)
    events = selectors.audit_event_list_for_microservice(
        microservice=service, filters=_audit_filters(form)
    )
    context = {"form": form, "page": _page(request, events), "service": service}
    return render(
        request, "provisioning/audit.html", {**context, "query": _query_without_page(request)}
    )
