"""Web views for clusters (the node role audit) and for re-verifying a workspace."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from provisioning import selectors
from provisioning.models import Cluster, Microservice, Workspace
from provisioning.permissions import can_verify_workspace, is_reviewer
from provisioning.services.runs import RunConflict
from provisioning.verification.services import (
    cluster_request_node_role_audit,
    workspace_request_verification,
)


def _get_cluster(user: Any, name: str) -> Cluster:
    try:
        return selectors.cluster_list(user=user).get(name=name)
    except Cluster.DoesNotExist:
        raise Http404("No such cluster.") from None


@login_required
@require_GET
def cluster_list(request: HttpRequest) -> HttpResponse:
    clusters = selectors.cluster_list(user=request.user)
    return render(request, "provisioning/cluster_list.html", {"clusters": clusters})


@login_required
@require_GET
def cluster_detail(request: HttpRequest, name: str) -> HttpResponse:
    cluster = _get_cluster(request.user, name)
    context = {
        "cluster": cluster,
        "audit": cluster.node_role_audit or {},
        "can_audit": request.user.is_staff or is_reviewer(request.user),
    }
    return render(request, "provisioning/cluster_detail.html", context)


@login_required
@require_POST
def cluster_audit_view(request: HttpRequest, name: str) -> HttpResponse:
    cluster = _get_cluster(request.user, name)
    if not (request.user.is_staff or is_reviewer(request.user)):
        raise PermissionDenied("Only staff and security reviewers start a node role audit.")
    cluster_request_node_role_audit(actor=request.user, cluster=cluster)
    messages.success(request, "Node role audit queued; reload in a few seconds.")
    return redirect("cluster-detail", name=cluster.name)


@login_required
@require_POST
def workspace_verify_view(request: HttpRequest, name: str, cluster: str) -> HttpResponse:
    try:
        microservice = selectors.microservice_get_for_user(user=request.user, name=name)
        workspace = Workspace.objects.select_related("microservice__team", "cluster").get(
            microservice=microservice, cluster__name=cluster
        )
    except (Microservice.DoesNotExist, Workspace.DoesNotExist):
        raise Http404("No such workspace.") from None
    if not can_verify_workspace(request.user, workspace):
        raise PermissionDenied("Only the owning team, reviewers and staff verify a workspace.")
    try:
        workspace_request_verification(actor=request.user, workspace=workspace)
        messages.success(request, f"Verification of {workspace} queued.")
    except RunConflict as exc:
        messages.error(request, str(exc))
    return redirect("microservice-detail", name=microservice.name)
