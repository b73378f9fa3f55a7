from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
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
    path("api/v1/schema/", RedirectView.as_view(pattern_name="api-schema"), name="api-v1-schema"),
    path("api/v1/", include(("provisioning.api.urls", "v1"))),  # names: "v1:api-..."
    path("api/", include("provisioning.api.urls")),  # unversioned: the same views
    path("", include("provisioning.urls")),
]
