"""POST /api/dry-run/: validate a spec and show what it would grant, writing nothing."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from provisioning import selectors
from provisioning.api import review_serializers as rs
from provisioning.api.idempotency import IdempotentPostMixin
from provisioning.api.views import ERRORS
from provisioning.models import Team
from provisioning.permissions import can_edit_microservice


class DryRun(IdempotentPostMixin, APIView):
    @extend_schema(
        request=rs.DryRunSerializer,
        responses={200: rs.DryRunResultSerializer, **ERRORS},
        description="Validate a spec as registration and change requests do (400 with the same "
        "field errors, namespace ownership included) and return, per cluster, the policies the "
        "portal would generate, the grant diff against what is live, the lint findings and the "
        "access matrix. Nothing is saved.",
    )
    def post(self, request: Request) -> Response:
        body = rs.DryRunSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        values = body.validated_data
        team = values.get("team") or _default_team(request.user, values["microservice"])
        result = selectors.microservice_dry_run(
            team=team,
            name=values["microservice"],
            namespace=values["namespace"],
            service_accounts=values["service_accounts"],
            resources=values["resources"],
            clusters=values["clusters"],
        )
        return Response(rs.DryRunResultSerializer(result).data)


def _default_team(user: Any, name: str) -> Team:
    """The microservice's team when the user may change it, else the user's only team."""
    visible = selectors.microservice_list_for_user(user=user).filter(name=name).first()
    if visible is not None and can_edit_microservice(user, visible):
        return visible.team
    teams = list(selectors.team_list_for_user(user=user)[:2])
    if len(teams) == 1 and not user.is_staff:
        return teams[0]
    raise exceptions.ValidationError({"team": ["Say which of your teams the service is for."]})
