"""Single sign-on with OpenID Connect (mozilla-django-oidc), configured from the environment.

The IdP's group claim (``SSO_GROUPS_CLAIM``, default ``groups``) decides what a user is in the
portal, at every SSO login: ``SSO_TEAM_GROUPS`` maps IdP groups to team names (membership of the
mapped teams follows the claim), ``SSO_REVIEWER_GROUPS`` make a security reviewer, and
``SSO_ADMIN_GROUPS`` a platform admin (Django admin). A user in none of the mapped groups is
refused (audited as ``auth.sso_refused``). The portal user is the IdP's ``preferred_username``.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from provisioning.models import AuditEvent, Team
from provisioning.permissions import SECURITY_GROUP

USERNAME = re.compile(r"[\w.@+-]{1,150}")


def sso_enabled() -> bool:
    return bool(settings.OIDC_RP_CLIENT_ID)


def sso_roles(groups: list[str]) -> dict[str, Any]:
    """Pure: the portal roles an IdP user with these groups gets."""
    teams = sorted({settings.SSO_TEAM_GROUPS[g] for g in groups if g in settings.SSO_TEAM_GROUPS})
    return {
        "teams": teams,
        "reviewer": any(g in settings.SSO_REVIEWER_GROUPS for g in groups),
        "admin": any(g in settings.SSO_ADMIN_GROUPS for g in groups),
    }


def _groups(claims: dict[str, Any]) -> list[str]:
    value = claims.get(settings.SSO_GROUPS_CLAIM) or []
    return [value] if isinstance(value, str) else [str(g) for g in value]


class PortalOIDCBackend(OIDCAuthenticationBackend):
    """Users come from the IdP by ``preferred_username``; their roles from its groups."""

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        username = claims.get("preferred_username") or ""
        roles = sso_roles(_groups(claims))
        if USERNAME.fullmatch(username) and (roles["teams"] or roles["reviewer"] or roles["admin"]):
            return True
        AuditEvent.objects.create(
            actor=None,
            actor_name="system",
            action="auth.sso_refused",
            object_type="auth.user",
            object_id="",
            data={"username": username[:150], "groups": _groups(claims)[:20]},
        )
        return False

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.filter(username=claims["preferred_username"])

    def create_user(self, claims: dict[str, Any]) -> Any:
        user = self.UserModel.objects.create_user(
            claims["preferred_username"], email=claims.get("email") or ""
        )
        user.set_unusable_password()  # SSO users never log in with a local password
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        roles = sso_roles(_groups(claims))
        mapped = set(settings.SSO_TEAM_GROUPS.values())
        for team in Team.objects.filter(name__in=mapped):
            if team.name in roles["teams"]:
                team.members.add(user)
            else:
                team.members.remove(user)
        security, _ = Group.objects.get_or_create(name=SECURITY_GROUP)
        (user.groups.add if roles["reviewer"] else user.groups.remove)(security)
        user.is_staff = user.is_superuser = roles["admin"]
        user.email = claims.get("email") or user.email
        user.save()
        AuditEvent.objects.create(
            actor=user,
            actor_name=user.get_username(),
            action="auth.sso_login",
            object_type="auth.user",
            object_id=str(user.pk),
            data=roles,
        )
        return user


class SsoStart(OIDCAuthenticationRequestView):
    """/oidc/authenticate/: off (404) unless OIDC_RP_CLIENT_ID is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if sso_enabled():
            super().__init__(*args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        return super().get(request)


class SsoCallback(OIDCAuthenticationCallbackView):
    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            return super().get(request)
        except SuspiciousOperation:
            return self.login_failure()


class PortalLoginView(LoginView):
    """The login page: the SSO button when configured, the password form unless
    LOCAL_LOGIN_ENABLED=0 (then a password POST is refused with 403)."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            sso_enabled=sso_enabled(),
            local_login=settings.LOCAL_LOGIN_ENABLED,
            sso_refused=self.request.GET.get("sso") == "refused",
        )
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LOCAL_LOGIN_ENABLED:
            raise PermissionDenied("Password login is switched off; log in with single sign-on.")
        return super().post(request, *args, **kwargs)
