"""API shapes of the security review: a change request's analysis per workspace and its summary,
and the dry run. The data comes from ``provisioning.analysis`` (JSON-safe dicts); these
serializers pass it through and document it in the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from provisioning.api.serializers import (
    ChangeRequestSerializer,
    RefuseControlCharactersMixin,
    RefuseUnknownFieldsMixin,
    ResourceListField,
    _clusters_by_name,
)
from provisioning.models import ChangeRequest, Cluster, Team
from provisioning.selectors import change_request_review, team_list_for_user
from provisioning.selectors.data_loss import change_request_data_loss


class FindingSerializer(serializers.Serializer):
    rule = serializers.CharField(help_text="Rule id, e.g. IRSA005 (docs/review.md lists them).")
    severity = serializers.ChoiceField(choices=["high", "medium", "low"])
    message = serializers.CharField()
    location = serializers.CharField(help_text="e.g. identity_policy.Statement[2].Action[0]")
    cluster = serializers.CharField(required=False, help_text="In blocking_findings only.")


class GrantsSerializer(serializers.Serializer):
    identity = serializers.ListField(
        child=serializers.DictField(), help_text="{action, resource, conditions}"
    )
    trust = serializers.ListField(
        child=serializers.DictField(), help_text="{provider, namespace, service_account}"
    )
    key = serializers.ListField(child=serializers.DictField(), help_text="{principal, action}")


class GrantDiffSerializer(serializers.Serializer):
    added = GrantsSerializer()
    removed = GrantsSerializer()
    unchanged = GrantsSerializer()


class MatrixSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=["ok", "fail"])
    counts = serializers.DictField(child=serializers.IntegerField())
    rows = serializers.ListField(
        child=serializers.DictField(),
        help_text="{category, kind, action, resource, expected, actual, ok, statement, context}",
    )


class WorkspaceAnalysisSerializer(serializers.Serializer):
    policies = serializers.JSONField(
        allow_null=True,
        help_text="The policies the portal generated (render_policies: role, resources, kms_key "
        "with `placeholder` true while the key does not exist yet, identity_policy, "
        "trust_policy, key_policy); null for a workspace being destroyed.",
    )
    grants = GrantsSerializer()
    diff = GrantDiffSerializer(help_text="Against the last applied spec.")
    findings = FindingSerializer(many=True)
    matrix = MatrixSerializer()


class PlanAnalysisSerializer(WorkspaceAnalysisSerializer):
    live_policies = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="The live policies the diff was taken against; null when nothing is live.",
    )
    error = serializers.CharField(required=False, help_text="Set when the analysis failed.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("policies", "grants", "diff", "findings", "matrix", "live_policies"):
            self.fields[name].required = False


class WorkspaceReviewSerializer(serializers.Serializer):
    run = serializers.IntegerField(help_text="The plan run; send {run: plan_sha256} to approve.")
    cluster = serializers.CharField()
    status = serializers.CharField()
    destroy = serializers.BooleanField()
    has_changes = serializers.BooleanField(allow_null=True)
    plan_sha256 = serializers.CharField()
    analysis = PlanAnalysisSerializer(allow_null=True, help_text="Null until the plan succeeded.")


class ChangeSummarySerializer(serializers.Serializer):
    classification = serializers.ChoiceField(
        choices=["no_new_access", "new_access_own_resources", "new_trust_subject", "decommission"]
    )
    classification_label = serializers.CharField()
    blocking = serializers.BooleanField(help_text="A high finding: approval is refused (409).")
    findings = serializers.DictField(child=serializers.IntegerField(), help_text="per severity")
    matrix_ok = serializers.BooleanField()


class TableProtectionSerializer(serializers.Serializer):
    cluster = serializers.CharField()
    resource = serializers.CharField(help_text="The table's name in the spec.")
    deletion_protection = serializers.BooleanField()
    point_in_time_recovery = serializers.BooleanField()


class ChangeReviewSerializer(serializers.Serializer):
    workspaces = WorkspaceReviewSerializer(many=True)
    data_protection = TableProtectionSerializer(
        many=True, help_text="Each table the plans keep, with its protection (prod: on)."
    )
    summary = ChangeSummarySerializer(
        allow_null=True, help_text="Null until every plan has been analysed."
    )
    blocking_findings = FindingSerializer(many=True)


class DataAtRiskSerializer(serializers.Serializer):
    cluster = serializers.CharField()
    run = serializers.IntegerField(help_text="The plan run.")
    entries = serializers.ListField(
        child=serializers.DictField(),
        help_text="Per table: `address`, `kind`, `name`, `action` (delete|replace), `items`, "
        "`bytes`, `deletion_protection`; per bucket: `objects`, `bytes`, `truncated`; `error` "
        "when the contents could not be read.",
    )


class DataLossSerializer(serializers.Serializer):
    at_risk = DataAtRiskSerializer(many=True, help_text="What the plans delete, per cluster.")
    required = serializers.BooleanField(help_text="The plans delete a table or bucket.")
    confirmed = serializers.BooleanField(help_text="Confirmed for exactly the current plans.")
    confirmed_by = serializers.CharField(allow_null=True)
    confirmed_at = serializers.DateTimeField(allow_null=True)
    pending = serializers.BooleanField(help_text="Required and not confirmed: no approval.")
    waiting = serializers.BooleanField(
        help_text="Planned and pending: POST .../confirm-data-loss/ is the requester's turn."
    )


class ChangeRequestDetailSerializer(ChangeRequestSerializer):
    """One change request with what its review shows (GET /api/change-requests/<id>/ and the
    answers of its actions); lists leave the review out."""

    review = serializers.SerializerMethodField()
    data_loss = serializers.SerializerMethodField()

    class Meta(ChangeRequestSerializer.Meta):
        fields = [*ChangeRequestSerializer.Meta.fields, "review", "data_loss"]

    @extend_schema_field(DataLossSerializer)
    def get_data_loss(self, change: ChangeRequest) -> dict[str, Any]:
        return DataLossSerializer(change_request_data_loss(change_request=change)).data

    @extend_schema_field(ChangeReviewSerializer)
    def get_review(self, change: ChangeRequest) -> dict[str, Any]:
        return ChangeReviewSerializer(change_request_review(change_request=change)).data


# --- Dry run ------------------------------------------------------------------------------------


class DryRunSerializer(
    RefuseControlCharactersMixin, RefuseUnknownFieldsMixin, serializers.Serializer
):
    microservice = serializers.CharField(help_text="A new name, or one of your microservices.")
    team = serializers.CharField(
        required=False,
        help_text="One of your teams; defaults to the microservice's team, or your only team.",
    )
    namespace = serializers.CharField()
    service_accounts = serializers.ListField(child=serializers.CharField(), allow_empty=True)
    resources = ResourceListField(allow_empty=True)
    clusters = serializers.ListField(child=serializers.CharField(), allow_empty=True)

    def validate_team(self, value: str) -> Team:
        teams = team_list_for_user(user=self.context["request"].user)
        team = teams.filter(name=value).first()
        if team is None:
            mine = ", ".join(t.name for t in teams) or "none"
            raise serializers.ValidationError(f"You can dry-run only for your teams ({mine}).")
        return team

    def validate_clusters(self, value: list[str]) -> list[Cluster]:
        return _clusters_by_name(value, self.context["request"].user)


class DryRunClusterSerializer(WorkspaceAnalysisSerializer):
    cluster = serializers.CharField()


class DryRunResultSerializer(serializers.Serializer):
    microservice = serializers.CharField()
    team = serializers.CharField()
    clusters = DryRunClusterSerializer(many=True)
    summary = ChangeSummarySerializer()


class BlockedApprovalSerializer(serializers.Serializer):
    """409 body of an approval refused for high findings."""

    detail = serializers.CharField()
    findings = FindingSerializer(many=True)
