"""The portal's domain: teams, clusters, microservices and their resources, workspaces, change
requests with their reviews, Terraform runs and the append-only audit trail."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from provisioning import validation as v


def validate_team_name(value: str) -> None:
    v.validate_dns1123_label(value, what="team name")


def validate_cluster_name(value: str) -> None:
    v.validate_portal_name(value, what="cluster name")


def validate_microservice_name(value: str) -> None:
    v.validate_portal_name(value, what="microservice name")


# arn:<partition>:iam::<account>:role[/path/]<name>: what a worker assumes in a cluster's account.
_ROLE_ARN = re.compile(
    r"arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}"
)
# AWS's own external id alphabet and length (sts:AssumeRole ExternalId).
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)


def validate_role_arn(value: str) -> None:
    if not _ROLE_ARN.fullmatch(value or ""):
        raise ValidationError(
            f"'{value}' is not an IAM role ARN; "
            "expected arn:aws:iam::<12-digit account>:role/<name>."
        )


def validate_external_id(value: str) -> None:
    if not _EXTERNAL_ID.fullmatch(value or ""):
        raise ValidationError(
            "The external id must be 2-1224 characters: letters, digits and + = , . @ : / - _."
        )


def validate_namespace(value: str) -> None:
    v.validate_dns1123_label(value, what="namespace")


def validate_resource_name(value: str) -> None:
    v.validate_portal_name(value, what="resource name")


def validate_service_accounts(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("List at least one Kubernetes service account name.")
    for name in value:
        v.validate_dns1123_label(name, what="service account name")
    if len(set(value)) != len(value):
        raise ValidationError("Service account names must be unique.")


class Team(models.Model):
    name = models.CharField(max_length=63, unique=True, validators=[validate_team_name])
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Environment(models.TextChoices):
    DEV = "dev", "Development"
    STAGING = "staging", "Staging"
    PROD = "prod", "Production"


class NodeRoleStatus(models.TextChoices):
    UNKNOWN = "unknown", "Not audited yet"
    CLEAN = "clean", "Only the EKS node baseline"
    FLAGGED = "flagged", "Permissions beyond the node baseline"
    ERROR = "error", "Audit failed"


class Cluster(models.Model):
    name = models.CharField(max_length=40, unique=True, validators=[validate_cluster_name])
    environment = models.CharField(max_length=16, choices=Environment.choices)
    account_id = models.CharField(max_length=12, validators=[v.validate_account_id])
    region = models.CharField(max_length=32, validators=[v.validate_region])
    oidc_provider_arn = models.CharField(max_length=255, validators=[v.validate_oidc_provider_arn])
    node_role_arn = models.CharField(max_length=255, blank=True)
    # The last node role audit (provisioning.verification): policies found and what was flagged.
    node_role_status = models.CharField(
        max_length=16, choices=NodeRoleStatus.choices, default=NodeRoleStatus.UNKNOWN
    )
    node_role_audit = models.JSONField(default=dict, blank=True)
    node_role_audited_at = models.DateTimeField(null=True, blank=True)
    # The role the worker assumes in the cluster's account for every AWS call it makes there
    # (Terraform's provider and the portal's own calls); empty: the worker's own credentials.
    deployment_role_arn = models.CharField(
        max_length=2048, blank=True, validators=[validate_role_arn]
    )
    # Optional sts:AssumeRole ExternalId the role's trust policy requires (not a secret in AWS's
    # model: it guards against a confused deputy, not against a reader of the database).
    deployment_external_id = models.CharField(
        max_length=1224, blank=True, validators=[validate_external_id]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.environment})"

    @property
    def oidc_issuer(self) -> str:
        return v.parse_oidc_provider_arn(self.oidc_provider_arn)["issuer"]

    def clean(self) -> None:
        try:
            parts = v.parse_oidc_provider_arn(self.oidc_provider_arn)
        except ValidationError:
            return  # the field validator reports it
        errors = {}
        if parts["account"] != self.account_id:
            errors["oidc_provider_arn"] = (
                f"The OIDC provider is in account {parts['account']}, not {self.account_id}."
            )
        if parts["region"] != self.region:
            errors["oidc_provider_arn"] = (
                f"The OIDC issuer is in region {parts['region']}, not {self.region}."
            )
        role = _ROLE_ARN.fullmatch(self.deployment_role_arn or "")
        if role and role.group(2) != self.account_id:
            errors["deployment_role_arn"] = (
                f"The deployment role is in account {role.group(2)}, not {self.account_id}; "
                "name a role in the cluster's own account."
            )
        if self.deployment_external_id and not self.deployment_role_arn:
            errors["deployment_external_id"] = "An external id needs a deployment role ARN."
        if errors:
            raise ValidationError(errors)


class NamespaceOwnership(models.Model):
    """A namespace of a cluster that belongs to one team; other teams may not trust into it."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="namespaces")
    namespace = models.CharField(max_length=63, validators=[validate_namespace])
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="namespaces")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "namespace"], name="namespace_one_owner_per_cluster"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cluster.name}/{self.namespace} ({self.team.name})"


class Microservice(models.Model):
    # Unique among live services only: the name is free again once its decommission is applied.
    name = models.CharField(max_length=63, validators=[validate_microservice_name])
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="microservices")
    namespace = models.CharField(max_length=63, validators=[validate_namespace])
    service_accounts = models.JSONField(default=list, validators=[validate_service_accounts])
    description = models.TextField(blank=True)
    decommissioned_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(decommissioned_at__isnull=True),
                name="microservice_name_unique_while_live",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ResourceKind(models.TextChoices):
    DYNAMODB_TABLE = "dynamodb_table", "DynamoDB table"
    S3_BUCKET = "s3_bucket", "S3 bucket"


class AccessLevel(models.TextChoices):
    READ = "read", "Read"
    READ_WRITE = "read_write", "Read and write"


class Resource(models.Model):
    """A resource as currently applied (the live spec); proposals live in ChangeRequest.spec."""

    microservice = models.ForeignKey(
        Microservice, on_delete=models.CASCADE, related_name="resources"
    )
    kind = models.CharField(max_length=32, choices=ResourceKind.choices)
    name = models.CharField(max_length=63, validators=[validate_resource_name])
    access = models.CharField(max_length=16, choices=AccessLevel.choices)
    settings = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["microservice", "kind", "name"], name="resource_unique_per_microservice"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.microservice}/{self.kind}/{self.name}"


class WorkspaceStatus(models.TextChoices):
    NEW = "new", "Not applied yet"
    APPLIED = "applied", "Applied"
    DRIFTED = "drifted", "Drift detected"
    FAILED = "failed", "Last run failed"
    DESTROYED = "destroyed", "Destroyed"


class NameScheme(models.IntegerChoices):
    """How the workspace's physical names are joined (provisioning.iam.naming)."""

    LEGACY = 1, "Legacy (cluster-service-resource)"
    CURRENT = 2, "Current (cluster--service--resource)"


class VerificationStatus(models.TextChoices):
    UNVERIFIED = "unverified", "Not verified"
    VERIFIED = "verified", "Verified"
    FAILED = "failed", "Verification failed"
    ERROR = "error", "Verification could not run"


class Workspace(models.Model):
    """One microservice in one cluster: one root module, one state, one KMS key, one IAM role."""

    microservice = models.ForeignKey(
        Microservice, on_delete=models.PROTECT, related_name="workspaces"
    )
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="workspaces")
    status = models.CharField(
        max_length=16, choices=WorkspaceStatus.choices, default=WorkspaceStatus.NEW
    )
    role_arn = models.CharField(max_length=255, blank=True)
    policy_arn = models.CharField(max_length=255, blank=True)
    kms_key_arn = models.CharField(max_length=255, blank=True)
    kms_alias = models.CharField(max_length=255, blank=True)
    resource_arns = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(default=dict, blank=True)
    # The live proof after the last apply (provisioning.verification): each probe with its
    # expected and actual outcome.
    verification_status = models.CharField(
        max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.UNVERIFIED
    )
    verification = models.JSONField(default=dict, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    # What AWS holds for this workspace (by the portal's tags and names) that its state does not.
    reconciliation = models.JSONField(default=dict, blank=True)
    # Fixed for the workspace's life: workspaces applied before '--' joins keep their names
    # (renaming would make Terraform replace tables, buckets, role and alias).
    name_scheme = models.PositiveSmallIntegerField(
        choices=NameScheme.choices, default=NameScheme.CURRENT
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["microservice", "cluster"], name="workspace_unique_per_cluster"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cluster.name}/{self.microservice.name}"

    @property
    def state_key(self) -> str:
        """Names the state (pg schema, local directory, S3 key); stable for the workspace's life."""
        return f"irsa_ws_{self.pk}"


class PhysicalNameKind(models.TextChoices):
    IAM_ROLE = "iam_role", "IAM role"
    KMS_ALIAS = "kms_alias", "KMS alias"
    DYNAMODB_TABLE = "dynamodb_table", "DynamoDB table"
    S3_BUCKET = "s3_bucket", "S3 bucket"


class PhysicalName(models.Model):
    """An AWS name a workspace holds or has planned: unique across the installation.

    Claimed when a plan is enqueued, released when the workspace's destroy is applied (or the name
    leaves its applied spec). The derivation already keeps distinct workspaces apart; the table also
    covers names kept from before it and refuses a clash at validation with the holder's name.
    """

    kind = models.CharField(max_length=32, choices=PhysicalNameKind.choices)
    name = models.CharField(max_length=255)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="physical_names"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "name"], name="physical_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class ChangeKind(models.TextChoices):
    CREATE = "create", "Create"
    CHANGE = "change", "Change"
    DECOMMISSION = "decommission", "Decommission"


class ChangeStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted (planning)"
    PLANNED = "planned", "Planned, awaiting review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    APPLYING = "applying", "Applying"
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


OPEN_CHANGE_STATUSES = (
    ChangeStatus.DRAFT,
    ChangeStatus.SUBMITTED,
    ChangeStatus.PLANNED,
    ChangeStatus.APPROVED,
    ChangeStatus.APPLYING,
)


class ChangeRequest(models.Model):
    """A proposed revision of a microservice's spec; approval binds to the plans it was shown."""

    microservice = models.ForeignKey(
        Microservice, on_delete=models.CASCADE, related_name="change_requests"
    )
    kind = models.CharField(max_length=16, choices=ChangeKind.choices)
    status = models.CharField(
        max_length=16, choices=ChangeStatus.choices, default=ChangeStatus.DRAFT
    )
    # The proposed spec: {namespace, service_accounts, resources, clusters}.
    spec = models.JSONField()
    justification = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="change_requests"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The requester's typed confirmation that the plans' data at risk may be deleted, bound to
    # the plans it was given for (plan run id → sha256): a re-plan voids it.
    data_loss_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data_loss_confirmed_at = models.DateTimeField(null=True, blank=True)
    data_loss_confirmed_plans = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["microservice"],
                condition=Q(status__in=OPEN_CHANGE_STATUSES),
                name="one_open_change_request_per_microservice",
            ),
        ]
        # The lists' order (newest first): a page is read off the index, not sorted from all.
        indexes = [
            models.Index(F("created_at").desc(), F("id").desc(), name="change_request_newest")
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.microservice}"


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class Review(models.Model):
    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="reviews"
    )
    # Empty only for an automatic approval (AUTO_APPROVE_NO_NEW_ACCESS), which ``automatic`` marks.
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="reviews",
        null=True,
        blank=True,
    )
    automatic = models.BooleanField(default=False)
    decision = models.CharField(max_length=16, choices=Decision.choices)
    comment = models.TextField(blank=True)
    # sha256 of every plan file the reviewer was shown, by run id: approval binds to these.
    plan_hashes = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.decision} of #{self.change_request_id} by {self.reviewer}"


class RunKind(models.TextChoices):
    PLAN = "plan", "Plan"
    APPLY = "apply", "Apply"
    DESTROY = "destroy", "Destroy"
    DRIFT = "drift", "Drift check"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    INTERRUPTED = "interrupted", "Interrupted"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class Run(models.Model):
    """One Terraform execution for one workspace; the record of truth, not Celery's backend."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="runs")
    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    kind = models.CharField(max_length=16, choices=RunKind.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    spec = models.JSONField(default=dict)  # the workspace spec this run renders
    plan_run = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="apply_runs"
    )
    destroy_plan = models.BooleanField(default=False)  # a plan that destroys the workspace
    plan_file = models.BinaryField(null=True, blank=True, editable=False)
    plan_sha256 = models.CharField(max_length=64, blank=True)
    plan_summary = models.JSONField(default=dict, blank=True)
    # The review analysis of a plan (provisioning.analysis): policies, grants, diff, findings.
    analysis = models.JSONField(default=dict, blank=True)
    has_changes = models.BooleanField(null=True)
    outputs = models.JSONField(default=dict, blank=True)
    log = models.TextField(blank=True)
    current_step = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    # Where Terraform runs: its process id, the host and the run's working directory, so a worker
    # (or the reaper) can adopt a Terraform that outlived the worker that started it.
    pid = models.IntegerField(null=True, blank=True)
    host = models.CharField(max_length=255, blank=True)
    workdir = models.CharField(max_length=1024, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # The database, not only a check in Python, keeps one active run per workspace.
            models.UniqueConstraint(
                fields=["workspace"],
                condition=Q(status__in=ACTIVE_RUN_STATUSES),
                name="one_active_run_per_workspace",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.kind} {self.workspace} {self.status}"


class AuditEvent(models.Model):
    """Append-only: who did what to which object, when, with what data."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)  # kept if the user is deleted
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.object_type}"
        )

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("Audit events are append-only; they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only; they cannot be deleted.")


class ApiToken(models.Model):
    """A named API token with an expiry, hashed at rest: the key is shown once, at creation, and
    only its sha256 is stored (a key is 256 random bits, so a fast hash is enough)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)  # the key's first characters, to recognise it
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"


# The API's and the webhooks' own rows live next to their code; imported here so Django sees them.
from provisioning.api.models import IdempotencyRecord  # noqa: E402, F401
from provisioning.notifications.models import (  # noqa: E402, F401
    WebhookDelivery,
    WebhookSubscription,
)
from provisioning.notifications.prefs import NotificationOptOut  # noqa: E402, F401
