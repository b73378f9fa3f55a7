"""REST endpoints. Thin: querysets come from the selectors (so an object the user may not see is
a 404), writes go through the services (which check permissions: 403), and ``exception_handler``
turns the services' errors into 400 (``{"errors": {path: [messages]}}``) and 409."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import F, Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from provisioning import selectors
from provisioning.api import review_serializers as rs
from provisioning.api import serializers as s
from provisioning.api.etags import ETagMixin
from provisioning.api.idempotency import IdempotentPostMixin
from provisioning.iam.spec import SpecError
from provisioning.models import ChangeKind, ChangeRequest, ChangeStatus, Microservice, Review, Run
from provisioning.selectors.dashboard import (
    SERVICE_STATES,
    MicroserviceFilters,
    microservice_rows_for_user,
)
from provisioning.services.changes import (
    BlockingFindingsError,
    TransitionError,
    change_request_approve,
    change_request_cancel,
    change_request_create,
    change_request_discard,
    change_request_reject,
    change_request_replan,
    change_request_submit,
)
from provisioning.services.data_loss import change_request_confirm_data_loss
from provisioning.services.microservices import microservice_register
from provisioning.services.runs import RunConflict
from provisioning.services.ui_support import change_request_decommission

ERRORS = {
    400: OpenApiResponse(s.ErrorsSerializer, description="Invalid input; nothing was written."),
    403: OpenApiResponse(s.DetailSerializer, description="Not allowed for this user."),
    404: OpenApiResponse(s.DetailSerializer, description="No such object you may see."),
    409: OpenApiResponse(s.DetailSerializer, description="Not possible in the current state."),
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Service errors → HTTP; every 400 has the same shape, whoever found the problem."""
    if isinstance(exc, SpecError):
        return Response({"errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, BlockingFindingsError):
        body = {"detail": str(exc), "findings": exc.findings}
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, TransitionError | RunConflict):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)  # keep the service's reason
    if isinstance(exc, exceptions.ParseError):  # a malformed body: same shape as any other 400
        return Response({"errors": {"body": [str(exc.detail)]}}, status=exc.status_code)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        response.data = {"errors": flatten_errors(exc.detail)}
    return response


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as the services' paths: ``{"resources": {1: {...}}}`` →
    ``resources[1]...``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for k, v in flatten_errors(value, path).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list) and any(isinstance(x, dict | list) for x in detail):
        for index, item in enumerate(detail):
            for k, v in flatten_errors(item, f"{prefix}[{index}]").items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        out[prefix] = [str(x) for x in detail]
    else:
        out[prefix] = [str(detail)]
    return out


def _change_requests(user: Any) -> QuerySet[ChangeRequest]:
    return selectors.change_request_list_for_user(user=user).prefetch_related(
        Prefetch(
            "runs",
            queryset=Run.objects.select_related("workspace__cluster", "workspace__microservice")
            .defer("log", "plan_file")
            .order_by("created_at", "pk"),
        ),
        Prefetch(
            "reviews", queryset=Review.objects.select_related("reviewer").order_by("created_at")
        ),
    )


def _change_response(request: Request, pk: int, code: int = status.HTTP_200_OK) -> Response:
    change = _change_requests(request.user).get(pk=pk)
    return Response(rs.ChangeRequestDetailSerializer(change).data, status=code)


# --- Clusters and microservices ----------------------------------------------------------------


class ClusterList(generics.ListAPIView):
    serializer_class = s.ClusterSerializer

    def get_queryset(self):
        return selectors.cluster_list(user=self.request.user)


def _microservices(user: Any, filters: MicroserviceFilters | None = None) -> QuerySet[Microservice]:
    """Visible services annotated with their ``state`` (the dashboard's), filtered."""
    return microservice_rows_for_user(user=user, filters=filters).prefetch_related(
        "resources", "workspaces__cluster"
    )


@extend_schema(
    parameters=[
        OpenApiParameter("team", OpenApiTypes.STR, description="A team name."),
        OpenApiParameter("cluster", OpenApiTypes.STR, description="Has a workspace there."),
        OpenApiParameter("status", OpenApiTypes.STR, enum=list(SERVICE_STATES)),
        OpenApiParameter("search", OpenApiTypes.STR, description="Part of name or namespace."),
    ]
)
class MicroserviceListCreate(IdempotentPostMixin, generics.ListAPIView):
    serializer_class = s.MicroserviceSerializer
    filter_backends = [OrderingFilter]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        params = self.request.query_params
        state = params.get("status", "")
        if state and state not in SERVICE_STATES:
            choices = ", ".join(SERVICE_STATES)
            raise exceptions.ValidationError({"status": [f"Use one of: {choices}."]})
        filters = MicroserviceFilters(
            team=params.get("team", ""),
            cluster=params.get("cluster", ""),
            state=state,
            search=params.get("search", ""),
        )
        return _microservices(self.request.user, filters)

    @extend_schema(
        request=s.MicroserviceRegisterSerializer,
        responses={201: rs.ChangeRequestDetailSerializer, **ERRORS},
        description="Register a microservice; returns its draft `create` change request.",
    )
    def post(self, request: Request) -> Response:
        data = s.MicroserviceRegisterSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        change = microservice_register(actor=request.user, **data.validated_data)
        return _change_response(request, change.pk, status.HTTP_201_CREATED)


class MicroserviceDetail(ETagMixin, generics.RetrieveAPIView):
    serializer_class = s.MicroserviceSerializer
    lookup_field = "name"

    def get_queryset(self):
        return _microservices(self.request.user)

    def get_object(self) -> Microservice:
        # Names repeat once a decommissioned service's name is reused: show the live one (from
        # the annotated queryset, which carries the service's `state`).
        found = (
            self.get_queryset()
            .filter(name=self.kwargs["name"])
            .order_by(F("decommissioned_at").desc(nulls_first=True), "-pk")
            .first()
        )
        if found is None:
            raise exceptions.NotFound("No such microservice.")
        return found


# --- Change requests ---------------------------------------------------------------------------


@extend_schema(
    parameters=[
        OpenApiParameter("status", OpenApiTypes.STR, enum=ChangeStatus.values),
        OpenApiParameter("microservice", OpenApiTypes.STR),
    ]
)
class ChangeRequestListCreate(IdempotentPostMixin, generics.ListAPIView):
    serializer_class = s.ChangeRequestSerializer

    def get_queryset(self):
        qs = _change_requests(self.request.user)
        wanted = self.request.query_params.get("status")
        if wanted is not None:
            if wanted not in ChangeStatus.values:
                raise exceptions.ValidationError(
                    {
                        "status": [
                            f"Unknown status '{wanted}'; use one of: "
                            f"{', '.join(ChangeStatus.values)}."
                        ]
                    }
                )
            qs = qs.filter(status=wanted)
        if name := self.request.query_params.get("microservice"):
            qs = qs.filter(microservice__name=name)
        return qs

    @extend_schema(
        request=s.ChangeRequestCreateSerializer,
        responses={201: rs.ChangeRequestDetailSerializer, **ERRORS},
        description="Propose a change to (or the decommissioning of) an existing microservice.",
    )
    def post(self, request: Request) -> Response:
        data = s.ChangeRequestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        microservice = _visible_microservice(request, values["microservice"])
        if values["kind"] == ChangeKind.DECOMMISSION:
            change = change_request_decommission(
                actor=request.user,
                microservice=microservice,
                justification=values["justification"],
            )
        else:
            change = change_request_create(
                actor=request.user,
                microservice=microservice,
                kind=ChangeKind.CHANGE,
                spec=dict(values["spec"]),
                justification=values["justification"],
            )
        return _change_response(request, change.pk, status.HTTP_201_CREATED)


def _visible_microservice(request: Request, name: str) -> Microservice:
    try:
        return selectors.microservice_get_for_user(user=request.user, name=name)
    except Microservice.DoesNotExist:
        raise exceptions.NotFound("No such microservice.") from None


class ChangeRequestDetail(ETagMixin, generics.RetrieveAPIView):
    serializer_class = rs.ChangeRequestDetailSerializer

    def get_queryset(self):
        return _change_requests(self.request.user)


class _ChangeRequestAction(IdempotentPostMixin, generics.GenericAPIView):
    """POST /api/change-requests/<id>/<action>/: 404 if unseen, then the service decides."""

    serializer_class = s.EmptySerializer

    def get_queryset(self):
        return selectors.change_request_list_for_user(user=self.request.user)

    def post(self, request: Request, pk: int) -> Response:
        change = self.get_object()
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        self.perform(change, body.validated_data)
        return _change_response(request, change.pk)

    def perform(self, change: ChangeRequest, data: dict[str, Any]) -> None:
        raise NotImplementedError


ACTION_SCHEMA = {"responses": {200: rs.ChangeRequestDetailSerializer, **ERRORS}}


@extend_schema(
    request=None, description="Draft → submitted: queues one plan per workspace.", **ACTION_SCHEMA
)
class ChangeRequestSubmit(_ChangeRequestAction):
    def perform(self, change: ChangeRequest, data: dict[str, Any]) -> None:
        change_request_submit(actor=self.request.user, change_request=change)


@extend_schema(
    request=None,
    description="Failed → submitted: plans again after a failed or interrupted apply.",
    **ACTION_SCHEMA,
)
class ChangeRequestReplan(_ChangeRequestAction):
    def perform(self, change: ChangeRequest, data: dict[str, Any]) -> None:
        change_request_replan(actor=self.request.user, change_request=change)


@extend_schema(
    request=None,
    description="Failed → cancelled: give up a failed change instead of re-planning it.",
    **ACTION_SCHEMA,
)
class ChangeRequestDiscard(_ChangeRequestAction):
    def perform(self, change: ChangeRequest, data: dict[str, Any]) -> None:
        change_request_discard(actor=self.request.user, change_request=change)


@extend_schema(
    description="Security reviewers only, never their own request. Send the `plan_hashes` you "
    "reviewed. Refused with 409 (and the `findings`) while a plan has a high finding.",
    responses={
        200: rs.ChangeRequestDetailSerializer,
        **ERRORS,
        409: OpenApiResponse(
            rs.BlockedApprovalSerializer,
            description="Not planned any more, the plans changed, or high findings.",
        ),
    },
)
class ChangeRequestApprove(_ChangeRequestAction):
    serializer_class = s.ApproveSerializer

    def perform(self, change: ChangeRequest, data: dict[str, Any]) -> None:
        change_request_approve(
            actor=self.request.user,
            change_request=change,
            shown_plan_hashes=data.get("plan_hashes"),
            comment=data["comment"],
        )


@extend_schema(
    description="The owning team, once the plans are ready: confirm that the tables and buckets "
    "the plans delete (`data_loss.at_risk`, with their counts) may go, by typing the service's "
    "name. Until then reviewers cannot approve (409). A re-plan asks again.",
    **ACTION_SCHEMA,
)
class ChangeRequestConfirmDataLoss(_ChangeRequestAction):
    serializer_class = s.ConfirmDataLossSerializer

    def perform(self, change: ChangeRequest, data: dict[str, Any]) -> None:
        change_request_confirm_data_loss(
            actor=self.request.user, change_request=change, confirm_name=data["confirm_name"]
        )


@extend_schema(description="Security reviewers only; the comment is required.", **ACTION_SCHEMA)
class ChangeRequestReject(_ChangeRequestAction):
    serializer_class = s.RejectSerializer

    def perform(self, change: ChangeRequest, data: dict[str, Any]) -> None:
        change_request_reject(
            actor=self.request.user, change_request=change, comment=data["comment"]
        )


@extend_schema(request=None, description="Any open state except applying.", **ACTION_SCHEMA)
class ChangeRequestCancel(_ChangeRequestAction):
    def perform(self, change: ChangeRequest, data: dict[str, Any]) -> None:
        change_request_cancel(actor=self.request.user, change_request=change)


# --- Runs --------------------------------------------------------------------------------------


class RunDetail(ETagMixin, generics.RetrieveAPIView):
    serializer_class = s.RunSerializer

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "with_log": True}

    def get_queryset(self):
        return selectors.run_list_for_user(user=self.request.user).select_related(
            "workspace__microservice"
        )
