"""Django admin for platform admins: clusters, teams and the inventory; change requests, reviews,
runs (with their plan files) and audit events are read-only.

Workspaces carry the repair actions after a failed or interrupted apply: reconcile with AWS, and
import what AWS holds outside the state into it, or delete it from AWS (both audited, both
refused while a run is active on the workspace)."""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from provisioning import models as m
from provisioning.forms import RefuseControlCharactersMixin
from provisioning.services import keys, reconcile, tokens
from provisioning.services import state_lock as locks
from provisioning.services.runs import RunConflict
from provisioning.terraform.runner import TerraformError
from provisioning.terraform.toolchain import ToolchainError


class CheckedModelForm(RefuseControlCharactersMixin, forms.ModelForm):
    """The admin's forms refuse NUL and other control characters as the portal's own do (text
    areas may keep their line breaks)."""


class PortalAdmin(admin.ModelAdmin):
    form = CheckedModelForm


@admin.register(m.Team)
class TeamAdmin(PortalAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    filter_horizontal = ["members"]


@admin.register(m.Cluster)
class ClusterAdmin(PortalAdmin):
    list_display = ["name", "environment", "account_id", "region", "node_role_status"]
    list_filter = ["environment", "region", "node_role_status"]
    search_fields = ["name", "account_id"]
    # Written by the node role audit (provisioning.verification), never by hand.
    readonly_fields = ["node_role_status", "node_role_audit", "node_role_audited_at"]
    fieldsets = [
        (None, {"fields": ["name", "environment", "account_id", "region", "oidc_provider_arn"]}),
        (
            "Deployment role (the worker assumes it for every AWS call in this account)",
            {"fields": ["deployment_role_arn", "deployment_external_id"]},
        ),
        ("Node role audit", {"fields": ["node_role_arn", *readonly_fields]}),
    ]


@admin.register(m.NamespaceOwnership)
class NamespaceOwnershipAdmin(PortalAdmin):
    """Assign a cluster's namespaces to teams; other teams' requests for them are refused."""

    list_display = ["namespace", "cluster", "team", "created_at"]
    list_filter = ["cluster", "team"]
    search_fields = ["namespace", "team__name"]
    autocomplete_fields = ["team"]


class ResourceInline(admin.TabularInline):
    model = m.Resource
    form = CheckedModelForm
    extra = 0


@admin.register(m.Microservice)
class MicroserviceAdmin(PortalAdmin):
    list_display = ["name", "team", "namespace", "created_at"]
    list_filter = ["team"]
    search_fields = ["name", "namespace"]
    inlines = [ResourceInline]


@admin.register(m.Workspace)
class WorkspaceAdmin(PortalAdmin):
    list_display = [
        "__str__",
        "status",
        "verification_status",
        "role_arn",
        "unmanaged_count",
        "updated_at",
    ]
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
        "reconciliation",
        "state_lock",
    ]
    actions = [
        "reconcile_with_aws",
        "import_unmanaged",
        "delete_unmanaged",
        "release_state_lock",
        "restore_kms_key",
    ]

    @admin.display(description="State lock (S3 backend)")
    def state_lock(self, workspace: m.Workspace) -> str:
        try:
            lock = locks.workspace_state_lock(workspace=workspace)
        except Exception as exc:  # an unreachable lock table must not break the page
            return f"could not read the lock table: {exc}"
        if lock is None:
            return "not locked"
        return f"{lock.lock_id} held by {lock.who} since {lock.created} ({lock.operation})"

    @admin.action(description="Release the state lock left by a dead run (audited)")
    def release_state_lock(self, request: HttpRequest, queryset: QuerySet) -> None:
        for workspace in queryset:
            try:
                lock = locks.workspace_state_lock(workspace=workspace)
                if lock is None:
                    self.message_user(request, f"{workspace}: not locked")
                    continue
                locks.workspace_release_state_lock(
                    actor=request.user, workspace=workspace, lock_id=lock.lock_id
                )
            except RunConflict as exc:
                self.message_user(request, str(exc), level=messages.ERROR)
                continue
            self.message_user(request, f"{workspace}: released lock {lock.lock_id} ({lock.who})")

    @admin.display(description="Outside state")
    def unmanaged_count(self, workspace: m.Workspace) -> int:
        return len(workspace.reconciliation.get("unmanaged", []))

    @admin.action(description="Reconcile with AWS (refresh inventory, list what state lacks)")
    def reconcile_with_aws(self, request: HttpRequest, queryset: QuerySet) -> None:
        for workspace in queryset:
            self._each(
                request, workspace, lambda w: reconcile.workspace_reconcile(workspace_id=w.pk)
            )

    @admin.action(description="Restore the KMS key pending deletion (within its window)")
    def restore_kms_key(self, request: HttpRequest, queryset: QuerySet) -> None:
        for workspace in queryset.select_related("cluster"):
            try:
                keys.workspace_key_restore(actor=request.user, workspace=workspace)
            except keys.KeyRestoreRefused as exc:
                self.message_user(request, f"{workspace}: {exc}", level=messages.ERROR)
            else:
                self.message_user(request, f"{workspace}: KMS key restored and enabled.")

    @admin.action(description="Import every listed unmanaged item into the state")
    def import_unmanaged(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._per_item(request, queryset, reconcile.workspace_reconcile_import, "imported")

    @admin.action(description="Delete every listed unmanaged item from AWS")
    def delete_unmanaged(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._per_item(request, queryset, reconcile.workspace_reconcile_delete, "deleted")

    def _per_item(self, request: HttpRequest, queryset: QuerySet, call, done: str) -> None:
        for workspace in queryset:
            items = list(workspace.reconciliation.get("unmanaged", []))
            if not items:
                continue
            ids = [item["id"] for item in items]
            if self._each(
                request,
                workspace,
                lambda w, ids=ids: call(actor=request.user, workspace=w, item_ids=ids),
            ):
                self.message_user(request, f"{workspace}: {done} {', '.join(ids)}")

    def _each(self, request: HttpRequest, workspace: m.Workspace, call) -> bool:
        """Refusals (an active run, Terraform or AWS saying no) become messages, not 500s."""
        try:
            call(workspace)
        except (reconcile.ReconcileRefused, TerraformError, ToolchainError) as exc:
            self.message_user(request, f"{workspace}: {exc}", level=messages.ERROR)
            return False
        return True


class ReadOnlyAdmin:
    """Four eyes without exceptions: what a change request, its reviews and runs say is written
    only by the services (submit, approve, run ...), never edited, added or deleted in admin."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReviewInline(ReadOnlyAdmin, admin.TabularInline):
    model = m.Review
    extra = 0
    fields = ["reviewer", "automatic", "decision", "comment", "plan_hashes", "created_at"]
    readonly_fields = fields


@admin.register(m.ChangeRequest)
class ChangeRequestAdmin(ReadOnlyAdmin, PortalAdmin):
    list_display = ["__str__", "status", "created_by", "created_at"]
    list_filter = ["status", "kind"]
    inlines = [ReviewInline]


@admin.register(m.Review)
class ReviewAdmin(ReadOnlyAdmin, PortalAdmin):
    list_display = ["__str__", "decision", "automatic", "created_at"]
    list_filter = ["decision", "automatic"]


@admin.register(m.Run)
class RunAdmin(ReadOnlyAdmin, PortalAdmin):
    list_display = ["__str__", "kind", "status", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    # The plan file is shown by its size and hash (the bytes are Terraform's binary format).
    exclude = ["plan_file"]
    readonly_fields = ["plan_file_size"]

    @admin.display(description="Plan file")
    def plan_file_size(self, run: m.Run) -> str:
        return f"{len(run.plan_file)} bytes" if run.plan_file else "none"


@admin.register(m.AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin, PortalAdmin):
    list_display = ["created_at", "actor_name", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_name", "object_id"]


@admin.register(m.ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin, PortalAdmin):
    """Tokens are created by their owners on the profile page (the key is shown once, there);
    admins list everyone's and revoke any (audited)."""

    list_display = [
        "name",
        "user",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    exclude = ["digest"]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = [t for t in queryset if tokens.api_token_revoke(actor=request.user, token=t)]
        self.message_user(request, f"Revoked {len(revoked)} token(s).")
