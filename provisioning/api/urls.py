"""API routes, served at ``/api/v1/`` (namespace ``v1``) and, unchanged, at ``/api/``.

Every route also matches without its trailing slash: APPEND_SLASH can only redirect, and a
redirect cannot carry a POST body. Anything else under the API prefix is a JSON 404 (never the
HTML page), including a non-integer id.
"""

from django.urls import URLPattern, path, re_path

from provisioning.api import (
    declarative,
    errors,
    inventory,
    reads,
    review,
    verification,
    views,
    webhooks,
)


def route(pattern: str, view, name: str) -> list[URLPattern]:
    """``pattern`` (ending in ``/``) by name, and the same without the slash (unnamed)."""
    return [path(pattern, view, name=name), path(pattern.rstrip("/"), view)]


urlpatterns = [
    *route("me/", reads.Me.as_view(), "api-me"),
    *route("teams/", reads.TeamList.as_view(), "api-teams"),
    *route("clusters/", views.ClusterList.as_view(), "api-clusters"),
    *route("clusters/<str:name>/", verification.ClusterDetail.as_view(), "api-cluster-detail"),
    *route(
        "microservices/<str:name>/workspaces/<str:cluster>/verify/",
        verification.WorkspaceVerify.as_view(),
        "api-workspace-verify",
    ),
    *route("microservices/", views.MicroserviceListCreate.as_view(), "api-microservices"),
    *route(
        "microservices/<str:name>/spec/",
        declarative.MicroserviceSpec.as_view(),
        "api-microservice-spec",
    ),
    *route(
        "microservices/<str:name>/", views.MicroserviceDetail.as_view(), "api-microservice-detail"
    ),
    *route("change-requests/", views.ChangeRequestListCreate.as_view(), "api-change-requests"),
    *route(
        "change-requests/<int:pk>/",
        views.ChangeRequestDetail.as_view(),
        "api-change-request-detail",
    ),
    *route(
        "change-requests/<int:pk>/submit/",
        views.ChangeRequestSubmit.as_view(),
        "api-change-request-submit",
    ),
    *route(
        "change-requests/<int:pk>/replan/",
        views.ChangeRequestReplan.as_view(),
        "api-change-request-replan",
    ),
    *route(
        "change-requests/<int:pk>/discard/",
        views.ChangeRequestDiscard.as_view(),
        "api-change-request-discard",
    ),
    *route(
        "change-requests/<int:pk>/confirm-data-loss/",
        views.ChangeRequestConfirmDataLoss.as_view(),
        "api-change-request-confirm-data-loss",
    ),
    *route(
        "change-requests/<int:pk>/approve/",
        views.ChangeRequestApprove.as_view(),
        "api-change-request-approve",
    ),
    *route(
        "change-requests/<int:pk>/reject/",
        views.ChangeRequestReject.as_view(),
        "api-change-request-reject",
    ),
    *route(
        "change-requests/<int:pk>/cancel/",
        views.ChangeRequestCancel.as_view(),
        "api-change-request-cancel",
    ),
    *route("runs/", reads.RunList.as_view(), "api-runs"),
    *route("runs/<int:pk>/", views.RunDetail.as_view(), "api-run-detail"),
    *route("runs/<int:pk>/log/", reads.RunLog.as_view(), "api-run-log"),
    *route("dry-run/", review.DryRun.as_view(), "api-dry-run"),
    *route("audit-events/", inventory.AuditEventList.as_view(), "api-audit-events"),
    *route("inventory/roles/", inventory.RoleInventory.as_view(), "api-inventory-roles"),
    *route("inventory/keys/", inventory.KeyInventory.as_view(), "api-inventory-keys"),
    *route("webhooks/", webhooks.WebhookListCreate.as_view(), "api-webhooks"),
    *route("webhooks/<int:pk>/", webhooks.WebhookDetail.as_view(), "api-webhook-detail"),
    *route(
        "webhooks/<int:pk>/deliveries/",
        webhooks.WebhookDeliveries.as_view(),
        "api-webhook-deliveries",
    ),
    re_path(r"^", errors.not_found),  # anything else (any character, newlines too)
]
