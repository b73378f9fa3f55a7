from django.urls import path

from provisioning.api import review, verification, views

urlpatterns = [
    path("clusters/", views.ClusterList.as_view(), name="api-clusters"),
    path("clusters/<str:name>/", verification.ClusterDetail.as_view(), name="api-cluster-detail"),
    path(
        "microservices/<str:name>/workspaces/<str:cluster>/verify/",
        verification.WorkspaceVerify.as_view(),
        name="api-workspace-verify",
    ),
    path("microservices/", views.MicroserviceListCreate.as_view(), name="api-microservices"),
    path(
        "microservices/<str:name>/",
        views.MicroserviceDetail.as_view(),
        name="api-microservice-detail",
    ),
    path("change-requests/", views.ChangeRequestListCreate.as_view(), name="api-change-requests"),
    path(
        "change-requests/<int:pk>/",
        views.ChangeRequestDetail.as_view(),
        name="api-change-request-detail",
    ),
    path(
        "change-requests/<int:pk>/submit/",
        views.ChangeRequestSubmit.as_view(),
        name="api-change-request-submit",
    ),
    path(
        "change-requests/<int:pk>/replan/",
        views.ChangeRequestReplan.as_view(),
        name="api-change-request-replan",
    ),
    path(
        "change-requests/<int:pk>/discard/",
        views.ChangeRequestDiscard.as_view(),
        name="api-change-request-discard",
    ),
    path(
        "change-requests/<int:pk>/approve/",
        views.ChangeRequestApprove.as_view(),
        name="api-change-request-approve",
    ),
    path(
        "change-requests/<int:pk>/reject/",
        views.ChangeRequestReject.as_view(),
        name="api-change-request-reject",
    ),
    path(
        "change-requests/<int:pk>/cancel/",
        views.ChangeRequestCancel.as_view(),
        name="api-change-request-cancel",
    ),
    path("runs/<int:pk>/", views.RunDetail.as_view(), name="api-run-detail"),
    path("dry-run/", review.DryRun.as_view(), name="api-dry-run"),
]
