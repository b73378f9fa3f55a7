"""Django admin for platform admins: clusters, teams and the inventory; audit is read-only."""

from django.contrib import admin

from provisioning import models as m


@admin.register(m.Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    filter_horizontal = ["members"]


@admin.register(m.Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ["name", "environment", "account_id", "region", "node_role_status"]
    list_filter = ["environment", "region", "node_role_status"]
    search_fields = ["name", "account_id"]
    # Written by the node role audit (provisioning.verification), never by hand.
    readonly_fields = ["node_role_status", "node_role_audit", "node_role_audited_at"]


@admin.register(m.NamespaceOwnership)
class NamespaceOwnershipAdmin(admin.ModelAdmin):
    """Assign a cluster's namespaces to teams; other teams' requests for them are refused."""

    list_display = ["namespace", "cluster", "team", "created_at"]
    list_filter = ["cluster", "team"]
    search_fields = ["namespace", "team__name"]
    autocomplete_fields = ["team"]


class ResourceInline(admin.TabularInline):
    model = m.Resource
    extra = 0


@admin.register(m.Microservice)
class MicroserviceAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "namespace", "created_at"]
    list_filter = ["team"]
    search_fields = ["name", "namespace"]
    inlines = [ResourceInline]


@admin.register(m.Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "verification_status", "role_arn", "updated_at"]
    list_filter = ["status", "verification_status", "cluster"]
    readonly_fields = [
        "role_arn",
        "policy_arn",
        "kms_key_arn",
        "kms_alias",
        "resource_arns",
        "outputs",
        "verification_status",
        "verification",
        "verified_at",
    ]


class ReviewInline(admin.TabularInline):
    model = m.Review
    extra = 0
    readonly_fields = [
        "reviewer",
        "automatic",
        "decision",
        "comment",
        "plan_hashes",
        "created_at",
    ]
    can_delete = False


@admin.register(m.ChangeRequest)
class ChangeRequestAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "created_by", "created_at"]
    list_filter = ["status", "kind"]
    inlines = [ReviewInline]


@admin.register(m.Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "status", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    readonly_fields = [f.name for f in m.Run._meta.fields if f.name != "plan_file"]


@admin.register(m.AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_name", "object_id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
