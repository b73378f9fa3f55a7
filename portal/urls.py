from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from provisioning import sso

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", sso.PortalLoginView.as_view(), name="login"),
    path("oidc/authenticate/", sso.SsoStart.as_view(), name="sso-start"),
    path("oidc/callback/", sso.SsoCallback.as_view(), name="sso-callback"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(
            custom_settings={"TITLE": "IRSA Portal API", "VERSION": "1"},
        ),
        name="api-schema",
    ),
    path("api/", include("provisioning.api.urls")),
    path("", include("provisioning.urls")),
]
