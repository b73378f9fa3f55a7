from django.urls import path

from provisioning import (
    views,
    views_clusters,
    views_lifecycle,
    views_pages,
    views_profile,
    views_runs,
)

urlpatterns = [
    path("", views_pages.dashboard, name="home"),
    path("services/", views_pages.microservice_list, name="microservice-list"),
    path("inventory/", views_pages.inventory, name="inventory"),
    path("inventory/export.csv", views_pages.inventory_csv, name="inventory-csv"),
    path("audit/", views_pages.audit_global, name="audit"),
    path(
        "profile/notifications/",
        views_profile.notification_preferences,
        name="notification-preferences",
    ),
    path("services/<str:name>/audit/", views_pages.microservice_audit, name="microservice-audit"),
    path(
        "services/<str:name>/manifest/<str:cluster>/",
        views.microservice_manifest,
        name="microservice-manifest",
    ),
    path("healthz", views.healthz, name="healthz"),
    path("profile/", views_profile.profile, name="profile"),
    path("profile/tokens/<int:pk>/revoke/", views_profile.token_revoke, name="token-revoke"),
    # "register/" and not "services/new/": "new" is a valid microservice name.
    path("register/", views.microservice_register_view, name="microservice-register"),
    path("services/<str:name>/", views.microservice_detail, name="microservice-detail"),
    path("services/<str:name>/change/", views.microservice_propose, name="microservice-propose"),
    path(
        "services/<str:name>/decommission/",
        views_lifecycle.microservice_decommission,
        name="microservice-decommission",
    ),
    path("changes/<int:pk>/", views.change_request_detail, name="change-request-detail"),
    path(
        "changes/<int:pk>/submit/",
        views.change_request_submit_view,
        name="change-request-submit",
    ),
    path(
        "changes/<int:pk>/replan/",
        views.change_request_replan_view,
        name="change-request-replan",
    ),
    path(
        "changes/<int:pk>/discard/",
        views.change_request_discard_view,
        name="change-request-discard",
    ),
    path(
        "changes/<int:pk>/confirm-data-loss/",
        views_lifecycle.change_request_confirm_data_loss_view,
        name="change-request-confirm-data-loss",
    ),
    path(
        "changes/<int:pk>/approve/",
        views.change_request_approve_view,
        name="change-request-approve",
    ),
    path(
        "changes/<int:pk>/reject/",
        views.change_request_reject_view,
        name="change-request-reject",
    ),
    path(
        "changes/<int:pk>/cancel/",
        views.change_request_cancel_view,
        name="change-request-cancel",
    ),
    path("reviews/", views.review_queue, name="review-queue"),
    path("runs/<int:pk>/", views_runs.run_detail, name="run-detail"),
    path("runs/<int:pk>/log/", views_runs.run_log, name="run-log"),
    path("runs/<int:pk>/log/tail/", views_runs.run_log_tail, name="run-log-tail"),
    path("runs/<int:pk>/log.txt", views_runs.run_log_raw, name="run-log-raw"),
    path("clusters/", views_clusters.cluster_list, name="cluster-list"),
    path("clusters/<str:name>/", views_clusters.cluster_detail, name="cluster-detail"),
    path("clusters/<str:name>/audit/", views_clusters.cluster_audit_view, name="cluster-audit"),
    path(
        "services/<str:name>/verify/<str:cluster>/",
        views_clusters.workspace_verify_view,
        name="workspace-verify",
    ),
]
