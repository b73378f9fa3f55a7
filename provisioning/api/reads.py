"""Reads a pipeline needs besides the change requests: who am I, my teams, runs and their logs."""

from __future__ import annotations

import time

from django.db import connection
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from provisioning import selectors
from provisioning.api import serializers as s
from provisioning.api.views import ERRORS
from provisioning.models import ACTIVE_RUN_STATUSES, Run, RunKind, RunStatus, Team
from provisioning.permissions import is_reviewer

READ_ERRORS = {k: v for k, v in ERRORS.items() if k in (403, 404)}
LOG_WAIT_MAX_SECONDS = 30
LOG_POLL_SECONDS = 0.5


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["name", "created_at"]


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.CharField()
    is_staff = serializers.BooleanField()
    is_reviewer = serializers.BooleanField(help_text="May approve others' change requests.")
    teams = serializers.ListField(child=serializers.CharField())


class Me(APIView):
    @extend_schema(
        summary="The signed-in user",
        description="Who the token belongs to, their teams and whether they review.",
        responses={200: MeSerializer},
    )
    def get(self, request: Request) -> Response:
        user = request.user
        teams = list(user.teams.order_by("name").values_list("name", flat=True))
        data = {
            "username": user.get_username(),
            "email": user.email,
            "is_staff": user.is_staff,
            "is_reviewer": is_reviewer(user),
            "teams": teams,
        }
        return Response(MeSerializer(data).data)


@extend_schema(summary="Teams", description="Your teams (staff: every team).")
class TeamList(generics.ListAPIView):
    serializer_class = TeamSerializer
    filter_backends = [OrderingFilter]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return selectors.team_list_for_user(user=self.request.user)


def _choice(request: Request, name: str, choices: list[str]) -> str | None:
    value = request.query_params.get(name)
    if value is not None and value not in choices:
        raise exceptions.ValidationError(
            {name: [f"Unknown {name} '{value}'; use one of: {', '.join(choices)}."]}
        )
    return value


@extend_schema(
    summary="Runs",
    description="Terraform runs of the microservices you may see, newest first; drift checks "
    "included. Logs are not listed: GET /api/v1/runs/{id}/log.",
    parameters=[
        OpenApiParameter("microservice", OpenApiTypes.STR, description="Microservice name."),
        OpenApiParameter("workspace", OpenApiTypes.STR, description="Cluster name."),
        OpenApiParameter("kind", OpenApiTypes.STR, enum=RunKind.values),
        OpenApiParameter("status", OpenApiTypes.STR, enum=RunStatus.values),
    ],
)
class RunList(generics.ListAPIView):
    serializer_class = s.RunSerializer
    filter_backends = [OrderingFilter]
    ordering_fields = ["id", "created_at", "finished_at", "status", "kind"]
    ordering = ["-id"]

    def get_queryset(self):
        qs = selectors.run_list_for_user(user=self.request.user).defer("log", "plan_file")
        params = self.request.query_params
        if kind := _choice(self.request, "kind", RunKind.values):
            qs = qs.filter(kind=kind)
        if wanted := _choice(self.request, "status", RunStatus.values):
            qs = qs.filter(status=wanted)
        if name := params.get("microservice"):
            qs = qs.filter(workspace__microservice__name=name)
        if cluster := params.get("workspace"):
            qs = qs.filter(workspace__cluster__name=cluster)
        return qs


class RunLogSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    finished = serializers.BooleanField(help_text="True once the run ended: no more output.")
    offset = serializers.IntegerField(help_text="The byte offset this chunk starts at.")
    next_offset = serializers.IntegerField(help_text="Send as ?offset= to get what follows.")
    text = serializers.CharField(help_text="The log bytes from offset on (UTF-8).")


class RunLogQuerySerializer(serializers.Serializer):
    offset = serializers.IntegerField(min_value=0, required=False, default=0)
    wait = serializers.FloatField(min_value=0, required=False, default=0)


class RunLog(APIView):
    @extend_schema(
        summary="A run's log from a byte offset (long-poll)",
        description="The log bytes after `offset`, the offset to ask for next, and the run's "
        f"status. With `wait` (seconds, at most {LOG_WAIT_MAX_SECONDS}) the answer waits until "
        "there is something new or the run ends. The log is capped at RUN_LOG_MAX_BYTES.",
        parameters=[RunLogQuerySerializer],
        responses={200: RunLogSerializer, 400: ERRORS[400], **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        query = RunLogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        offset = query.validated_data["offset"]
        wait = min(query.validated_data["wait"], LOG_WAIT_MAX_SECONDS)
        visible = selectors.run_list_for_user(user=request.user)
        if not visible.filter(pk=pk).exists():
            raise exceptions.NotFound("No such run.")
        status, log = _log_after(pk, offset, wait)
        chunk = _utf8_prefix(log[offset:])
        return Response(
            {
                "run": pk,
                "status": status,
                "finished": status not in ACTIVE_RUN_STATUSES,
                "offset": offset,
                "next_offset": offset + len(chunk),
                "text": chunk.decode("utf-8", errors="replace"),
            }
        )


def _log_after(pk: int, offset: int, wait: float) -> tuple[str, bytes]:
    """Status and log bytes, re-read every LOG_POLL_SECONDS until the log passes ``offset``,
    the run ends, or ``wait`` runs out. The connection is released between reads, so a
    waiting client holds no database connection while it sleeps."""
    deadline = time.monotonic() + wait
    while True:
        status, text = Run.objects.filter(pk=pk).values_list("status", "log").get()
        log = text.encode("utf-8")
        done = status not in ACTIVE_RUN_STATUSES
        if len(log) > offset or done or time.monotonic() >= deadline:
            return status, log
        if not connection.in_atomic_block:  # a test's transaction must keep its connection
            connection.close()
        time.sleep(min(LOG_POLL_SECONDS, max(deadline - time.monotonic(), 0)))


def _utf8_prefix(data: bytes) -> bytes:
    """Cut before a character split at the end (the next chunk starts with it whole)."""
    for cut in range(len(data), max(len(data) - 4, -1), -1):
        try:
            data[:cut].decode("utf-8")
            return data[:cut]
        except UnicodeDecodeError:
            continue
    return data
