"""Server-rendered pages. Thin: they call selectors, permissions, the services and the pure
builders. Every write goes through a service, which checks the permission again; a refused action
is a 403 page, a conflicting one a message, bad input a form error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from provisioning import selectors
from provisioning.forms import (
    DataLossConfirmForm,
    DecommissionForm,
    RegisterForm,
    ReviewForm,
    SpecEditor,
    SpecForm,
)
from provisioning.iam.policies import render_policies
from provisioning.iam.spec import SpecError
from provisioning.models import (
    OPEN_CHANGE_STATUSES,
    ChangeKind,
    ChangeRequest,
    ChangeStatus,
    Cluster,
    Microservice,
    Run,
    Workspace,
    WorkspaceStatus,
)
from provisioning.permissions import can_approve, can_edit_microservice, is_reviewer
from provisioning.review_display import (
    matrix_view,
    policy_views,
    protection_label,
    review_summary,
)
from provisioning.selectors.dashboard import change_request_waiting_since
from provisioning.selectors.data_loss import change_request_data_loss, data_loss_waiting_reason
from provisioning.services.changes import (
    BlockingFindingsError,
    TransitionError,
    change_request_approve,
    change_request_cancel,
    change_request_create,
    change_request_discard,
    change_request_reject,
    change_request_replan,
    change_request_submit,
)
from provisioning.services.microservices import microservice_register
from provisioning.services.runs import RunConflict
from provisioning.specs import build_workspace_spec, workspace_name_scheme

# Cancel is offered while not applying; the service decides, this only hides a useless button.
CANCELLABLE = tuple(s for s in OPEN_CHANGE_STATUSES if s != ChangeStatus.APPLYING)
LIVE_WORKSPACE = (WorkspaceStatus.APPLIED, WorkspaceStatus.DRIFTED)
NOT_LIVE = (WorkspaceStatus.NEW, WorkspaceStatus.DESTROYED)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _get_microservice_for_user(request: HttpRequest, name: str) -> Microservice:
    """The microservice if the user may see it, else 404 (never reveal that it exists)."""
    try:
        return selectors.microservice_get_for_user(user=request.user, name=name)
    except Microservice.DoesNotExist:
        raise Http404("No such microservice.") from None


def _get_change_for_user(request: HttpRequest, pk: int) -> ChangeRequest:
    try:
        return selectors.change_request_list_for_user(user=request.user).get(pk=pk)
    except ChangeRequest.DoesNotExist:
        raise Http404("No such change request.") from None


# --- Microservices -----------------------------------------------------------------------------


@login_required
@require_GET
def microservice_detail(request: HttpRequest, name: str) -> HttpResponse:
    microservice = _get_microservice_for_user(request, name)
    change = microservice.change_requests.order_by("-created_at").first()
    workspaces = list(microservice.workspaces.select_related("cluster").order_by("cluster__name"))
    keys = {w.cluster_id: w.kms_key_arn for w in workspaces if w.kms_key_arn}
    previews = []
    if change is not None:
        for cluster in Cluster.objects.filter(name__in=change.spec.get("clusters", [])):
            previews.append(_preview(microservice, change.spec, cluster, keys.get(cluster.pk)))
    return render(
        request,
        "provisioning/microservice_detail.html",
        {
            "service": microservice,
            "change": change,
            "previews": previews,
            "workspaces": [
                {"workspace": w, "manifest": _manifest(microservice, w)} for w in workspaces
            ],
            "changes": microservice.change_requests.select_related("created_by").order_by(
                "-created_at"
            ),
            "can_edit": can_edit_microservice(request.user, microservice),
            # A service that never went live has nothing to destroy: cancel its request instead.
            "can_decommission": any(w.status not in NOT_LIVE for w in workspaces),
            "decommission_form": DecommissionForm(),
        },
    )


def _preview(
    microservice: Microservice, spec: dict, cluster: Cluster, key_arn: str | None = None
) -> dict:
    try:
        workspace = build_workspace_spec(
            microservice=microservice.name,
            namespace=spec["namespace"],
            service_accounts=spec["service_accounts"],
            resources=spec["resources"],
            cluster=cluster,
            name_scheme=workspace_name_scheme(microservice=microservice, cluster=cluster),
        )
    except SpecError as exc:
        return {"cluster": cluster, "errors": exc.errors}
    document = render_policies(workspace, key_arn=key_arn)
    settings_of = {(r.kind, r.name): r.settings for r in workspace.resources}
    return {
        "cluster": cluster,
        "document": document,
        "resources": [
            {**r, "protection": protection_label(r["kind"], settings_of[(r["kind"], r["name"])])}
            for r in document["resources"]
        ],
        "policies": {
            k: json.dumps(document[k], indent=2)
            for k in ("identity_policy", "trust_policy", "key_policy")
        },
    }


def _manifest(microservice: Microservice, workspace: Workspace) -> str:
    """The ServiceAccount(s) to apply in the cluster; names are DNS-1123 labels, safe in YAML."""
    if workspace.status not in LIVE_WORKSPACE or not workspace.role_arn:
        return ""
    return "---\n".join(
        "apiVersion: v1\n"
        "kind: ServiceAccount\n"
        "metadata:\n"
        f"  name: {sa}\n"
        f"  namespace: {microservice.namespace}\n"
        "  annotations:\n"
        f"    eks.amazonaws.com/role-arn: {workspace.role_arn}\n"
        for sa in microservice.service_accounts
    )


@login_required
@require_GET
def microservice_manifest(request: HttpRequest, name: str, cluster: str) -> HttpResponse:
    """The ServiceAccount manifest of one live workspace, as a file to ``kubectl apply -f``."""
    microservice = _get_microservice_for_user(request, name)
    workspace = microservice.workspaces.filter(cluster__name=cluster).first()
    manifest = _manifest(microservice, workspace) if workspace is not None else ""
    if not manifest:
        raise Http404("No live workspace in that cluster.")
    response = HttpResponse(manifest, content_type="application/yaml; charset=utf-8")
    filename = f"{microservice.name}-{cluster}-serviceaccount.yaml"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def microservice_register_view(request: HttpRequest) -> HttpResponse:
    teams = selectors.team_list_for_user(user=request.user)
    if request.method == "GET":
        editor = SpecEditor.build(RegisterForm, teams=teams)
        return render(request, "provisioning/register.html", {"editor": editor})
    editor = SpecEditor.build(RegisterForm, request.POST, teams=teams)
    if "add_row" in request.POST:
        editor = editor.with_extra_row(RegisterForm, teams=teams)
    elif editor.is_valid():
        data = editor.form.cleaned_data
        try:
            change = microservice_register(
                actor=request.user,
                team=data["team"],
                name=data["name"],
                namespace=data["namespace"],
                service_accounts=data["service_accounts"],
                resources=editor.resources(),
                clusters=list(data["clusters"]),
                justification=data["justification"],
                description=data["description"],
            )
        except SpecError as exc:
            editor.add_spec_errors(exc.errors)
        else:
            messages.success(request, f"Registered {change.microservice}; submit it to plan.")
            return redirect("change-request-detail", pk=change.pk)
    return render(request, "provisioning/register.html", {"editor": editor})


@login_required
@require_http_methods(["GET", "POST"])
def microservice_propose(request: HttpRequest, name: str) -> HttpResponse:
    microservice = _get_microservice_for_user(request, name)
    if not can_edit_microservice(request.user, microservice):
        raise PermissionDenied("Only the owning team can change this microservice.")
    if request.method == "GET":
        live = selectors.microservice_live_spec(microservice=microservice)
        editor = SpecEditor.build(
            SpecForm,
            initial={**live, "justification": ""},
            resources=live.get("resources", []),
        )
    else:
        editor = SpecEditor.build(SpecForm, request.POST)
        if "add_row" in request.POST:
            editor = editor.with_extra_row(SpecForm)
        elif editor.is_valid():
            try:
                change = change_request_create(
                    actor=request.user,
                    microservice=microservice,
                    kind=ChangeKind.CHANGE,
                    spec=editor.spec(),
                    justification=editor.form.cleaned_data["justification"],
                )
            except SpecError as exc:
                editor.add_spec_errors(exc.errors)
            except TransitionError as exc:
                messages.error(request, str(exc))
                return redirect("microservice-detail", name=microservice.name)
            else:
                return redirect("change-request-detail", pk=change.pk)
    return render(request, "provisioning/propose.html", {"service": microservice, "editor": editor})


# --- Change requests ---------------------------------------------------------------------------


@login_required
@require_GET
def change_request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_change(request, _get_change_for_user(request, pk))


def _render_change(
    request: HttpRequest,
    change: ChangeRequest,
    *,
    review_form: ReviewForm | None = None,
    confirm_form: DataLossConfirmForm | None = None,
    status: int = 200,
) -> HttpResponse:
    microservice = change.microservice
    plans = selectors.change_request_latest_plans(change_request=change)
    review = selectors.change_request_review(change_request=change)
    can_edit = can_edit_microservice(request.user, microservice)
    data_loss = change_request_data_loss(change_request=change)
    return render(
        request,
        "provisioning/change_request_detail.html",
        {
            "change": change,
            "service": microservice,
            "spec_json": json.dumps(change.spec, indent=2),
            "review": review_summary(review),
            "sections": _change_sections(change, plans, review),
            "reviews": change.reviews.select_related("reviewer").order_by("created_at"),
            "review_form": review_form or ReviewForm(),
            "plans_shown": ",".join(f"{p.pk}:{p.plan_sha256}" for p in plans),
            "can_submit": can_edit and change.status == ChangeStatus.DRAFT,
            "can_replan": can_edit and change.status == ChangeStatus.FAILED,
            "failures": selectors.change_request_failures(change_request=change),
            "data_loss": data_loss,
            "can_confirm_data_loss": can_edit and data_loss["waiting"],
            "confirm_form": confirm_form or DataLossConfirmForm(),
            "approve_blocked": data_loss_waiting_reason(change_request=change),
            "can_cancel": can_edit and change.status in CANCELLABLE,
            "can_approve": can_approve(request.user, change),
        },
        status=status,
    )


def _change_sections(
    change: ChangeRequest, plans: list[Run], review: dict[str, Any]
) -> list[dict[str, Any]]:
    """One section per cluster: the latest plan with its analysed policies (before a plan: the
    policy preview) and every run."""
    runs = list(change.runs.select_related("workspace__cluster").order_by("-created_at", "-pk"))
    targets = [] if change.kind == ChangeKind.DECOMMISSION else change.spec.get("clusters", [])
    names = sorted(set(targets) | {r.workspace.cluster.name for r in runs})
    clusters = {c.name: c for c in Cluster.objects.filter(name__in=names)}
    keys = dict(
        change.microservice.workspaces.exclude(kms_key_arn="").values_list(
            "cluster__name", "kms_key_arn"
        )
    )
    plan_by_cluster = {p.workspace.cluster.name: p for p in plans}
    analyses = {w["cluster"]: w["analysis"] for w in review["workspaces"]}
    sections = []
    for name in names:
        cluster = clusters.get(name)
        analysis = analyses.get(name)
        preview = None
        if cluster is not None and name in targets and analysis is None:
            preview = _preview(change.microservice, change.spec, cluster, keys.get(name))
        plan = plan_by_cluster.get(name)
        sections.append(
            {
                "name": name,
                "preview": preview,
                "analysis": analysis,
                "policies": policy_views(analysis),
                "matrix": matrix_view(analysis),
                "plan": _plan_view(plan) if plan else None,
                "runs": [r for r in runs if r.workspace.cluster.name == name],
            }
        )
    return sections


def _plan_view(run: Run) -> dict[str, Any]:
    summary = run.plan_summary or {}
    return {
        "run": run,
        "summary": [(k, summary.get(k) or []) for k in ("add", "change", "replace", "destroy")],
        "policy_changes": [
            {
                "address": c.get("address"),
                "actions": ", ".join(c.get("actions") or []),
                "before": _pretty(c.get("before")),
                "after": _pretty(c.get("after")) if c.get("after_known", True) else None,
            }
            for c in summary.get("policy_changes") or []
        ],
    }


def _pretty(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, sort_keys=True)


def _act(
    request: HttpRequest, change: ChangeRequest, call: Callable[[], object], done: str
) -> HttpResponse:
    """Run one lifecycle service; PermissionDenied propagates to the 403 page."""
    try:
        call()
    except (TransitionError, RunConflict, SpecError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("change-request-detail", pk=change.pk)


@login_required
@require_POST
def change_request_submit_view(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    return _act(
        request,
        change,
        lambda: change_request_submit(actor=request.user, change_request=change),
        f"Submitted #{change.pk}; the plans are queued.",
    )


@login_required
@require_POST
def change_request_replan_view(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    return _act(
        request,
        change,
        lambda: change_request_replan(actor=request.user, change_request=change),
        f"Re-planning #{change.pk}; the new plans need a new review.",
    )


@login_required
@require_POST
def change_request_discard_view(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    return _act(
        request,
        change,
        lambda: change_request_discard(actor=request.user, change_request=change),
        f"Discarded #{change.pk}.",
    )


@login_required
@require_POST
def change_request_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    form = ReviewForm(request.POST)
    form.is_valid()  # every field is optional; cleaned_data holds what was sent
    try:
        change_request_approve(
            actor=request.user,
            change_request=change,
            shown_plan_hashes=form.plan_hashes(),
            comment=form.cleaned_data["comment"],
        )
    except BlockingFindingsError as exc:
        # The reviewer reads why next to the form, with the findings that must go first.
        form.add_error(
            None,
            f"Not approved: {len(exc.findings)} high finding(s) in the policies below must be "
            "fixed first (by a change of the spec, or of the catalog).",
        )
        for f in exc.findings:
            form.add_error(None, f"{f['cluster']} · {f['rule']} at {f['location']}: {f['message']}")
        change.refresh_from_db()
        return _render_change(request, change, review_form=form, status=409)
    except (TransitionError, RunConflict, SpecError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Approved #{change.pk}.")
    return redirect("change-request-detail", pk=change.pk)


@login_required
@require_POST
def change_request_reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    form = ReviewForm(request.POST)
    form.is_valid()
    try:
        change_request_reject(
            actor=request.user, change_request=change, comment=form.cleaned_data["comment"]
        )
    except SpecError as exc:
        for field, errors in exc.errors.items():
            form.add_error(field if field in form.fields else None, errors)
        return _render_change(request, change, review_form=form)
    except TransitionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Rejected #{change.pk}.")
    return redirect("change-request-detail", pk=change.pk)


@login_required
@require_POST
def change_request_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    return _act(
        request,
        change,
        lambda: change_request_cancel(actor=request.user, change_request=change),
        f"Cancelled #{change.pk}.",
    )


@login_required
@require_GET
def review_queue(request: HttpRequest) -> HttpResponse:
    if not is_reviewer(request.user):
        raise PermissionDenied("The review queue is for security reviewers.")
    queue = change_request_waiting_since(selectors.change_request_review_queue(user=request.user))
    return render(request, "provisioning/review_queue.html", {"queue": queue})
