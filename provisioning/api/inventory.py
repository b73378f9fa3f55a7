"""Read models over the API: the role and key inventory and the audit trail (selectors from
provisioning/selectors/inventory.py and audit.py, shared with the pages)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers

from provisioning.models import AuditEvent, WorkspaceStatus
from provisioning.selectors.audit import AuditFilters, audit_event_list_for_user
from provisioning.selectors.inventory import (
    InventoryFilters,
    inventory_rows,
    workspace_inventory_for_user,
)


class InventoryRowSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["role", "key"])
    workspace_id = serializers.IntegerField()
    microservice = serializers.CharField()
    team = serializers.CharField()
    cluster = serializers.CharField()
    environment = serializers.CharField()
    arn = serializers.CharField(help_text="Empty until the first apply.")
    status = serializers.CharField(help_text="The workspace status; keys: `pending_deletion`.")
    rotation = serializers.CharField(help_text="Keys: the rotation schedule.")
    pending_deletion_on = serializers.DateField(allow_null=True)
    last_applied_at = serializers.DateTimeField(allow_null=True)
    verification = serializers.CharField()
    last_verified_at = serializers.DateTimeField(allow_null=True)
    drift = serializers.BooleanField()


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", help_text="A username, or `system`.")

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "action", "object_type", "object_id", "data"]


INVENTORY_PARAMETERS = [
    OpenApiParameter("team", OpenApiTypes.STR),
    OpenApiParameter("cluster", OpenApiTypes.STR),
    OpenApiParameter("status", OpenApiTypes.STR, enum=WorkspaceStatus.values),
    OpenApiParameter("search", OpenApiTypes.STR, description="Part of a name or an ARN."),
    OpenApiParameter("drifted", OpenApiTypes.BOOL),
]


class _Inventory(generics.ListAPIView):
    serializer_class = InventoryRowSerializer
    kind = ""

    def get_queryset(self):
        params = self.request.query_params
        wanted = params.get("status", "")
        if wanted and wanted not in WorkspaceStatus.values:
            choices = ", ".join(WorkspaceStatus.values)
            raise exceptions.ValidationError({"status": [f"Use one of: {choices}."]})
        filters = InventoryFilters(
            team=params.get("team", ""),
            cluster=params.get("cluster", ""),
            status=wanted,
            search=params.get("search", ""),
            drifted=_boolean(params, "drifted"),
        )
        return workspace_inventory_for_user(user=self.request.user, filters=filters)

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        return inventory_rows(workspaces=page, kind=self.kind) if page is not None else None


@extend_schema(
    summary="IAM role inventory",
    description="Every role the portal manages that you may see (one per workspace).",
    parameters=INVENTORY_PARAMETERS,
)
class RoleInventory(_Inventory):
    kind = "role"


@extend_schema(
    summary="KMS key inventory",
    description="Every workspace key you may see, with rotation and a destroyed key's deletion "
    "date.",
    parameters=INVENTORY_PARAMETERS,
)
class KeyInventory(_Inventory):
    kind = "key"


@extend_schema(
    summary="Audit events",
    description="Security reviewers and staff see every event; others the events of the "
    "microservices they see (and of their change requests, workspaces and runs). Newest first.",
    parameters=[
        OpenApiParameter("action", OpenApiTypes.STR, description="Exact, or a prefix with `.`."),
        OpenApiParameter("actor", OpenApiTypes.STR, description="A username or `system`."),
        OpenApiParameter("object_type", OpenApiTypes.STR, description="e.g. provisioning.run"),
        OpenApiParameter("since", OpenApiTypes.DATETIME),
        OpenApiParameter("until", OpenApiTypes.DATETIME),
    ],
)
class AuditEventList(generics.ListAPIView):
    serializer_class = AuditEventSerializer

    def get_queryset(self):
        params = self.request.query_params
        filters = AuditFilters(
            action=params.get("action", ""),
            actor=params.get("actor", ""),
            object_type=params.get("object_type", ""),
            since=_datetime(params, "since"),
            until=_datetime(params, "until"),
        )
        return audit_event_list_for_user(user=self.request.user, filters=filters)


def _boolean(params: Any, name: str) -> bool:
    values = params.getlist(name)
    if not values:
        return False
    if len(values) > 1 or values[0] not in ("true", "false"):
        raise exceptions.ValidationError({name: ["Use true or false."]})
    return values[0] == "true"


def _datetime(params: Any, name: str) -> Any:
    if name not in params:
        return None
    field = serializers.DateTimeField()
    try:
        return field.to_internal_value(params[name])
    except serializers.ValidationError as exc:
        raise exceptions.ValidationError({name: exc.detail}) from None
