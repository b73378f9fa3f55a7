"""API shapes. Input serializers only check types and shapes that would otherwise crash a
service; the services validate the spec itself, so the API and the UI give the same messages."""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from provisioning import selectors
from provisioning.models import (
    AccessLevel,
    ChangeKind,
    ChangeRequest,
    Cluster,
    Microservice,
    Resource,
    ResourceKind,
    Review,
    Run,
    Workspace,
)
from provisioning.validation import control_character_errors


class ErrorsSerializer(serializers.Serializer):
    """400 body: field path (`resources[1].name`) → messages saying what to change."""

    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class DetailSerializer(serializers.Serializer):
    """401/403/404/409 body."""

    detail = serializers.CharField()


class KeyAttributeSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["S", "N", "B"])


class ResourceSettingsSerializer(serializers.Serializer):
    """Per kind (docs/spec.md); unknown keys are refused."""

    partition_key = KeyAttributeSerializer(required=False, help_text="dynamodb_table")
    sort_key = KeyAttributeSerializer(required=False, help_text="dynamodb_table")
    billing_mode = serializers.ChoiceField(
        choices=["PAY_PER_REQUEST", "PROVISIONED"], required=False, help_text="dynamodb_table"
    )
    read_capacity = serializers.IntegerField(min_value=1, max_value=40000, required=False)
    write_capacity = serializers.IntegerField(min_value=1, max_value=40000, required=False)
    deletion_protection = serializers.BooleanField(
        required=False, help_text="dynamodb_table; default true in prod clusters, else false"
    )
    point_in_time_recovery = serializers.BooleanField(
        required=False, help_text="dynamodb_table; default true in prod clusters, else false"
    )
    versioning = serializers.BooleanField(required=False, help_text="s3_bucket; default true")


class ResourceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ResourceKind.choices)
    name = serializers.CharField(help_text="DNS-1123 label; the physical name is derived")
    access = serializers.ChoiceField(choices=AccessLevel.choices)
    settings = ResourceSettingsSerializer(required=False)


@extend_schema_field(ResourceSerializer(many=True))
class ResourceListField(serializers.ListField):
    """Resources pass through as given (as objects), so the spec validation sees unknown or
    misspelt keys and refuses them with its own message instead of dropping them."""

    child = serializers.DictField()


def _clusters_by_name(names: list[str], user: Any) -> list[Cluster]:
    found = {c.name: c for c in selectors.cluster_list(user=user).filter(name__in=names)}
    missing = [n for n in names if n not in found]
    if missing:
        raise serializers.ValidationError(
            f"Unknown cluster(s): {', '.join(missing)}. GET /api/clusters/ lists them."
        )
    return [found[n] for n in dict.fromkeys(names)]


# DRF's marker for multi-line text (the browsable API shows a text area): such a field, and only
# such a field, may hold tabs and line breaks.
MULTILINE = {"base_template": "textarea.html"}


class RefuseControlCharactersMixin:
    """Every string of an input body, at any depth and keys too, is free of NUL and other control
    characters, checked on the raw input before any field, query or service sees it; only
    ``MULTILINE`` fields may hold tabs and line breaks. Every input serializer of the API has it
    (tests/test_control_characters.py walks every write endpoint of the schema)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, QueryDict):  # a form-encoded body
            data = {k: vs[0] if len(vs) == 1 else vs for k, vs in data.lists()}
        multiline = {
            name
            for name, field in self.fields.items()  # type: ignore[attr-defined]
            if field.style.get("base_template") == MULTILINE["base_template"]
        }
        errors = control_character_errors(data, multiline=multiline)
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)  # type: ignore[misc]


class RefuseUnknownFieldsMixin:
    """A misspelt optional key is refused, not silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        unknown = {}
        if isinstance(data, dict):
            allowed = ", ".join(self.fields)  # type: ignore[attr-defined]
            unknown = {
                key: [f"Unknown field '{key}'; allowed: {allowed}."]
                for key in sorted(set(data) - set(self.fields))  # type: ignore[attr-defined]
            }
        try:
            value = super().to_internal_value(data)  # type: ignore[misc]
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **unknown}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class MicroserviceRegisterSerializer(
    RefuseControlCharactersMixin, RefuseUnknownFieldsMixin, serializers.Serializer
):
    name = serializers.CharField()
    team = serializers.CharField(help_text="Name of one of your teams.")
    namespace = serializers.CharField()
    service_accounts = serializers.ListField(child=serializers.CharField(), allow_empty=True)
    resources = ResourceListField(allow_empty=True)
    clusters = serializers.ListField(child=serializers.CharField(), allow_empty=True)
    justification = serializers.CharField(
        required=False, allow_blank=True, default="", style=MULTILINE
    )
    description = serializers.CharField(
        required=False, allow_blank=True, default="", style=MULTILINE
    )

    def validate_team(self, value: str) -> Any:
        teams = selectors.team_list_for_user(user=self.context["request"].user)
        team = teams.filter(name=value).first()
        if team is None:
            mine = ", ".join(t.name for t in teams) or "none"
            raise serializers.ValidationError(
                f"You can register microservices only for your teams ({mine})."
            )
        return team

    def validate_clusters(self, value: list[str]) -> list[Cluster]:
        return _clusters_by_name(value, self.context["request"].user)


class SpecSerializer(
    RefuseControlCharactersMixin, RefuseUnknownFieldsMixin, serializers.Serializer
):
    namespace = serializers.CharField()
    service_accounts = serializers.ListField(child=serializers.CharField(), allow_empty=True)
    resources = ResourceListField(allow_empty=True)
    clusters = serializers.ListField(child=serializers.CharField(), allow_empty=True)


class ChangeRequestCreateSerializer(
    RefuseControlCharactersMixin, RefuseUnknownFieldsMixin, serializers.Serializer
):
    microservice = serializers.CharField(help_text="Name of an existing microservice.")
    kind = serializers.ChoiceField(choices=[ChangeKind.CHANGE, ChangeKind.DECOMMISSION])
    spec = SpecSerializer(
        required=False, help_text="The full proposed spec (kind change); omit for decommission."
    )
    justification = serializers.CharField(
        required=False, allow_blank=True, default="", style=MULTILINE
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == ChangeKind.CHANGE and "spec" not in attrs:
            raise serializers.ValidationError({"spec": ["A change needs the full proposed spec."]})
        if attrs["kind"] == ChangeKind.DECOMMISSION and "spec" in attrs:
            raise serializers.ValidationError(
                {"spec": ["A decommission takes no spec (it targets no cluster); omit it."]}
            )
        return attrs


class ApproveSerializer(
    RefuseControlCharactersMixin, RefuseUnknownFieldsMixin, serializers.Serializer
):
    comment = serializers.CharField(required=False, allow_blank=True, default="", style=MULTILINE)
    plan_hashes = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Required: plan run id → plan_sha256 as you reviewed them (the change "
        "request's `review.workspaces[].run` and `plan_sha256`). Missing: 400; the plans changed "
        "since: 409.",
    )


class ConfirmDataLossSerializer(
    RefuseControlCharactersMixin, RefuseUnknownFieldsMixin, serializers.Serializer
):
    confirm_name = serializers.CharField(
        allow_blank=True,
        help_text="The microservice's name, typed to confirm that the tables and buckets in "
        "`data_loss.at_risk` (with their data) may be deleted.",
    )


class RejectSerializer(
    RefuseControlCharactersMixin, RefuseUnknownFieldsMixin, serializers.Serializer
):
    comment = serializers.CharField(
        style=MULTILINE,
        help_text="What has to change for approval.",
        error_messages={
            "required": "Say what has to change for approval.",
            "blank": "Say what has to change for approval.",
        },
    )


class EmptySerializer(serializers.Serializer):
    pass


# --- Output ------------------------------------------------------------------------------------


class ClusterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Cluster
        fields = [
            "name",
            "environment",
            "account_id",
            "region",
            "oidc_provider_arn",
            "node_role_arn",
            "node_role_status",
            "node_role_audited_at",
            "deployment_role_arn",
        ]


class ClusterDetailSerializer(ClusterSerializer):
    class Meta(ClusterSerializer.Meta):
        fields = [*ClusterSerializer.Meta.fields, "node_role_audit"]


class LiveResourceSerializer(serializers.ModelSerializer):
    settings = ResourceSettingsSerializer()

    class Meta:
        model = Resource
        fields = ["kind", "name", "access", "settings"]


class WorkspaceSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    kms_key_pending_deletion = serializers.SerializerMethodField(
        help_text="After a destroy: the key's ARN, state and deletion date (restorable until then)."
    )

    def get_kms_key_pending_deletion(self, workspace: Workspace) -> dict[str, Any] | None:
        return (workspace.outputs or {}).get("kms_key_pending_deletion")

    resource_arns = serializers.DictField(
        child=serializers.CharField(), help_text="`<kind>/<name>` → ARN, once applied."
    )

    class Meta:
        model = Workspace
        fields = [
            "cluster",
            "status",
            "role_arn",
            "policy_arn",
            "kms_key_arn",
            "kms_alias",
            "kms_key_pending_deletion",
            "resource_arns",
            "reconciliation",
            "updated_at",
            "verification_status",
            "verified_at",
            "verification",
        ]


class MicroserviceSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.name")
    service_accounts = serializers.ListField(child=serializers.CharField())
    resources = LiveResourceSerializer(many=True, help_text="The live (applied) resources.")
    workspaces = WorkspaceSerializer(many=True)
    state = serializers.SerializerMethodField(
        help_text="Summary: live, draft, in_review, applying, failed, drifted, rejected, new, "
        "decommissioned (filter with ?status=)."
    )

    class Meta:
        model = Microservice
        fields = [
            "name",
            "team",
            "namespace",
            "service_accounts",
            "description",
            "decommissioned_at",
            "created_at",
            "state",
            "resources",
            "workspaces",
        ]

    def get_state(self, microservice: Microservice) -> str | None:
        return getattr(microservice, "state", None)  # annotated by the selector


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.SerializerMethodField(
        help_text="The reviewer's username; null for an automatic approval."
    )
    plan_hashes = serializers.DictField(
        child=serializers.CharField(), help_text="Plan run id → plan_sha256 approved."
    )

    class Meta:
        model = Review
        fields = ["reviewer", "automatic", "decision", "comment", "plan_hashes", "created_at"]

    def get_reviewer(self, review: Review) -> str | None:
        return review.reviewer.get_username() if review.reviewer is not None else None


# --- Typed JSON (the schema names their shape; the stored JSON is sent as it is) ----------------


class PolicyChangeSerializer(serializers.Serializer):
    address = serializers.CharField()
    actions = serializers.ListField(child=serializers.CharField())
    before = serializers.JSONField(allow_null=True, help_text="The policy document, or null.")
    after = serializers.JSONField(allow_null=True, help_text="The policy document, or null.")
    after_known = serializers.BooleanField(help_text="False while a value is known after apply.")


class PlanSummarySerializer(serializers.Serializer):
    add = serializers.ListField(child=serializers.CharField(), help_text="Resource addresses.")
    change = serializers.ListField(child=serializers.CharField())
    replace = serializers.ListField(child=serializers.CharField())
    destroy = serializers.ListField(child=serializers.CharField())
    policy_changes = PolicyChangeSerializer(many=True, required=False)


class RunOutputsSerializer(serializers.Serializer):
    role_arn = serializers.CharField()
    role_name = serializers.CharField()
    policy_arn = serializers.CharField()
    kms_key_arn = serializers.CharField()
    kms_key_id = serializers.CharField()
    kms_alias = serializers.CharField()
    resource_arns = serializers.DictField(child=serializers.CharField())


class ChangeSpecSerializer(serializers.Serializer):
    namespace = serializers.CharField()
    service_accounts = serializers.ListField(child=serializers.CharField())
    resources = ResourceSerializer(many=True)
    clusters = serializers.ListField(child=serializers.CharField(), help_text="Cluster names.")


@extend_schema_field(PlanSummarySerializer)
class PlanSummaryField(serializers.JSONField):
    pass


@extend_schema_field(RunOutputsSerializer)
class RunOutputsField(serializers.JSONField):
    pass


@extend_schema_field(ChangeSpecSerializer)
class ChangeSpecField(serializers.JSONField):
    pass


class RunSerializer(serializers.ModelSerializer):
    """A Terraform run. The log (up to RUN_LOG_MAX_BYTES) is only in GET /api/v1/runs/{id}/,
    not in lists or inside change requests."""

    cluster = serializers.CharField(source="workspace.cluster.name", read_only=True)
    microservice = serializers.CharField(source="workspace.microservice.name", read_only=True)
    log = serializers.CharField(required=False, help_text="Only in GET /api/runs/<id>/.")
    plan_summary = PlanSummaryField(help_text="Plans: what Terraform would do; else {}.")
    outputs = RunOutputsField(help_text="Successful applies: Terraform's outputs; else {}.")

    class Meta:
        model = Run
        fields = [
            "id",
            "microservice",
            "cluster",
            "change_request",
            "kind",
            "status",
            "current_step",
            "destroy_plan",
            "plan_sha256",
            "plan_summary",
            "has_changes",
            "outputs",
            "exit_code",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "log",
        ]

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        if not self.context.get("with_log"):
            # dropped before reading, so lists never load (or defer-query) the log per row
            fields.pop("log", None)
        return fields


class ChangeRequestSerializer(serializers.ModelSerializer):
    microservice = serializers.CharField(source="microservice.name")
    created_by = serializers.CharField(source="created_by.get_username")
    reviews = ReviewSerializer(many=True)
    runs = RunSerializer(many=True)
    spec = ChangeSpecField(help_text="The proposed spec ({} for a decommission).")

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "microservice",
            "kind",
            "status",
            "spec",
            "justification",
            "created_by",
            "created_at",
            "updated_at",
            "reviews",
            "runs",
        ]
