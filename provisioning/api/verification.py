"""API for the verification and the node role audit: cluster detail, re-verify a workspace."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from provisioning import selectors
from provisioning.api import serializers as s
from provisioning.api.etags import ETagMixin
from provisioning.api.idempotency import IdempotentPostMixin
from provisioning.models import Workspace
from provisioning.permissions import can_verify_workspace
from provisioning.verification.services import workspace_request_verification


class ClusterDetail(ETagMixin, generics.RetrieveAPIView):
    serializer_class = s.ClusterDetailSerializer
    lookup_field = "name"

    def get_queryset(self):
        return selectors.cluster_list(user=self.request.user)


class WorkspaceVerify(IdempotentPostMixin, generics.GenericAPIView):
    serializer_class = s.EmptySerializer

    @extend_schema(
        request=None,
        responses={
            202: s.WorkspaceSerializer,
            403: OpenApiResponse(s.DetailSerializer),
            404: OpenApiResponse(s.DetailSerializer),
            409: OpenApiResponse(s.DetailSerializer),
        },
        description="Verify the workspace's access again, in a worker; the result lands on the "
        "workspace (`verification_status`, `verification`).",
    )
    def post(self, request: Request, name: str, cluster: str) -> Response:
        visible = selectors.microservice_list_for_user(user=request.user)
        microservice = get_object_or_404(visible, name=name)
        workspace = get_object_or_404(
            Workspace.objects.select_related("microservice__team", "cluster"),
            microservice=microservice,
            cluster__name=cluster,
        )
        if not can_verify_workspace(request.user, workspace):
            raise exceptions.PermissionDenied("Only the owning team, reviewers and staff verify.")
        workspace_request_verification(actor=request.user, workspace=workspace)
        return Response(s.WorkspaceSerializer(workspace).data, status=status.HTTP_202_ACCEPTED)
