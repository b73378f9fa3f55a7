"""Server-rendered pages. Thin: they call selectors, permissions and the pure builders."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from provisioning import selectors
from provisioning.iam.policies import render_policies
from provisioning.iam.spec import SpecError
from provisioning.models import Cluster, Microservice
from provisioning.permissions import can_edit_microservice
from provisioning.specs import build_workspace_spec


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _get_microservice_for_user(request: HttpRequest, name: str) -> Microservice:
    """The microservice if the user may see it, else 404 (never reveal that it exists)."""
    try:
        return selectors.microservice_list_for_user(user=request.user).get(name=name)
    except Microservice.DoesNotExist:
        raise Http404("No such microservice.") from None


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    services = selectors.microservice_list_for_user(user=request.user)
    return render(request, "provisioning/home.html", {"services": services})


@login_required
@require_GET
def microservice_detail(request: HttpRequest, name: str) -> HttpResponse:
    microservice = _get_microservice_for_user(request, name)
    change = microservice.change_requests.order_by("-created_at").first()
    previews = []
    if change is not None:
        for cluster in Cluster.objects.filter(name__in=change.spec.get("clusters", [])):
            previews.append(_preview(microservice, change.spec, cluster))
    return render(
        request,
        "provisioning/microservice_detail.html",
        {
            "service": microservice,
            "change": change,
            "previews": previews,
            "can_edit": can_edit_microservice(request.user, microservice),
        },
    )


def _preview(microservice: Microservice, spec: dict, cluster: Cluster) -> dict:
    try:
        workspace = build_workspace_spec(
            microservice=microservice.name,
            namespace=spec["namespace"],
            service_accounts=spec["service_accounts"],
            resources=spec["resources"],
            cluster=cluster,
        )
    except SpecError as exc:
        return {"cluster": cluster, "errors": exc.errors}
    document = render_policies(workspace)
    return {
        "cluster": cluster,
        "document": document,
        "policies": {
            k: json.dumps(document[k], indent=2)
            for k in ("identity_policy", "trust_policy", "key_policy")
        },
    }
