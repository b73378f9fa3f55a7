"""PUT /api/v1/microservices/<name>/spec: the desired spec, applied idempotently."""

from __future__ import annotations

from typing import Any

import yaml
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from provisioning import selectors
from provisioning.api import review_serializers as rs
from provisioning.api import serializers as s
from provisioning.api.parsers import BoundedJSONParser
from provisioning.api.views import ERRORS, _change_response
from provisioning.services.declarative import OpenRequestDiffers, microservice_spec_apply


class YAMLParser(BaseParser):
    """The spec file may be YAML (``safe_load``: plain data only, never Python objects)."""

    media_type = "application/yaml"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return yaml.safe_load(stream.read().decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(f"YAML parse error - {exc}") from None


class DesiredSpecSerializer(
    s.RefuseControlCharactersMixin, s.RefuseUnknownFieldsMixin, serializers.Serializer
):
    """The spec file of `render_policies` (docs/spec.md) plus `team` and `clusters`."""

    microservice = serializers.CharField(
        required=False, help_text="Optional; must equal the name in the URL."
    )
    team = serializers.CharField(
        required=False, help_text="One of your teams; required to register a new service."
    )
    namespace = serializers.CharField()
    service_accounts = serializers.ListField(child=serializers.CharField(), allow_empty=True)
    resources = s.ResourceListField(allow_empty=True)
    clusters = serializers.ListField(
        child=serializers.CharField(), allow_empty=True, help_text="Cluster names to deploy to."
    )
    justification = serializers.CharField(
        required=False, allow_blank=True, default="", style=s.MULTILINE
    )
    description = serializers.CharField(
        required=False, allow_blank=True, default="", style=s.MULTILINE
    )
    submit = serializers.BooleanField(
        required=False, default=True, help_text="Submit the request (queue its plans)."
    )

    def validate_team(self, value: str) -> Any:
        user = self.context["request"].user
        team = selectors.team_list_for_user(user=user).filter(name=value).first()
        if team is None:
            raise serializers.ValidationError(f"'{value}' is not one of your teams.")
        return team

    def validate_clusters(self, value: list[str]) -> list[Any]:
        return s._clusters_by_name(value, self.context["request"].user)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        name = self.context["name"]
        if attrs.get("microservice", name) != name:
            raise serializers.ValidationError(
                {"microservice": [f"The file names '{attrs['microservice']}'; the URL '{name}'."]}
            )
        return attrs


class OpenRequestConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    change_request = serializers.IntegerField(help_text="The open request that differs.")


class MicroserviceSpec(APIView):
    parser_classes = [BoundedJSONParser, YAMLParser]

    @extend_schema(
        operation_id="microservice_spec_put",
        summary="Declare a microservice's desired spec",
        description="Registers the service if it does not exist (201), opens a change request "
        "when the spec differs from what is live and nothing is proposed (201), and otherwise "
        "returns the request that already proposes (or applied) exactly this spec (200). The "
        "request is submitted unless `submit` is false. JSON or YAML (`application/yaml`).",
        request=DesiredSpecSerializer,
        responses={
            200: rs.ChangeRequestDetailSerializer,
            201: rs.ChangeRequestDetailSerializer,
            **ERRORS,
            409: OpenApiResponse(
                OpenRequestConflictSerializer,
                description="Another open request proposes a different spec, the service was "
                "decommissioned, or it belongs to another team.",
            ),
        },
    )
    def put(self, request: Request, name: str) -> Response:
        body = DesiredSpecSerializer(data=request.data, context={"request": request, "name": name})
        body.is_valid(raise_exception=True)
        values = body.validated_data
        spec = {k: values[k] for k in ("namespace", "service_accounts", "resources")}
        spec["clusters"] = [c.name for c in values["clusters"]]
        try:
            change, created = microservice_spec_apply(
                actor=request.user,
                name=name,
                team=values.get("team"),
                spec=spec,
                clusters=values["clusters"],
                justification=values["justification"],
                description=values["description"],
                submit=values["submit"],
            )
        except OpenRequestDiffers as exc:
            body = {"detail": str(exc), "change_request": exc.change_request_id}
            return Response(body, status=status.HTTP_409_CONFLICT)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return _change_response(request, change.pk, code)
