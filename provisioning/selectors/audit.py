"""Audit events a user may see: the timeline of one microservice (its own events and those of its
change requests, workspaces and runs) for whoever sees the microservice, and every event for
security reviewers and staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast

from provisioning.models import AuditEvent, ChangeRequest, Microservice, Run, Workspace
from provisioning.permissions import is_reviewer
from provisioning.selectors.microservices import microservice_list_for_user

# AuditEvent.object_type is the model's label (services.audit.audit_record).
_MICROSERVICE = "provisioning.microservice"
_CHANGE_REQUEST = "provisioning.changerequest"
_WORKSPACE = "provisioning.workspace"
_RUN = "provisioning.run"


@dataclass(frozen=True)
class AuditFilters:
    """Filters of the audit pages and API; empty means all."""

    action: str = ""  # an exact action, or a prefix ending in "." such as "change_request."
    actor: str = ""  # a username
    object_type: str = ""
    since: datetime | None = None
    until: datetime | None = None


def audit_can_see_all(*, user: Any) -> bool:
    """The global audit trail is for security reviewers and staff."""
    return bool(user.is_authenticated and (user.is_staff or is_reviewer(user)))


def audit_event_list_for_user(
    *, user: Any, filters: AuditFilters | None = None
) -> QuerySet[AuditEvent]:
    """Every event for security/staff; for others the events of the microservices they see."""
    if audit_can_see_all(user=user):
        qs = AuditEvent.objects.all()
    else:
        qs = AuditEvent.objects.filter(
            _about_microservices(microservice_list_for_user(user=user).values("pk"))
        )
    return _filtered(qs, filters or AuditFilters())


def audit_event_list_for_microservice(
    *, microservice: Microservice, filters: AuditFilters | None = None
) -> QuerySet[AuditEvent]:
    """The timeline of one microservice. The caller has already checked the user sees it."""
    qs = AuditEvent.objects.filter(_about_microservices([microservice.pk]))
    return _filtered(qs, filters or AuditFilters())


def _ids_as_text(qs: QuerySet[Any]) -> QuerySet[Any]:
    # object_id is text (it holds any model's key), so the subqueries compare text with text.
    return qs.annotate(id_text=Cast("pk", CharField())).values("id_text")


def _about_microservices(microservices: Any) -> Q:
    services = Microservice.objects.filter(pk__in=microservices)
    changes = ChangeRequest.objects.filter(microservice__in=microservices)
    workspaces = Workspace.objects.filter(microservice__in=microservices)
    runs = Run.objects.filter(workspace__microservice__in=microservices)
    return (
        Q(object_type=_MICROSERVICE, object_id__in=_ids_as_text(services))
        | Q(object_type=_CHANGE_REQUEST, object_id__in=_ids_as_text(changes))
        | Q(object_type=_WORKSPACE, object_id__in=_ids_as_text(workspaces))
        | Q(object_type=_RUN, object_id__in=_ids_as_text(runs))
    )


def _filtered(qs: QuerySet[AuditEvent], filters: AuditFilters) -> QuerySet[AuditEvent]:
    if filters.action:
        if filters.action.endswith("."):
            qs = qs.filter(action__startswith=filters.action)
        else:
            qs = qs.filter(action=filters.action)
    if filters.actor:
        qs = qs.filter(actor_name=filters.actor)
    if filters.object_type:
        qs = qs.filter(object_type=filters.object_type)
    if filters.since is not None:
        qs = qs.filter(created_at__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(created_at__lt=filters.until)
    return qs.order_by("-created_at", "-pk")
