from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from provisioning import validation as v
from provisioning.iam.spec import SpecError
from provisioning.models import (
    ChangeKind,
    ChangeRequest,
    Cluster,
    Microservice,
    NameScheme,
    Team,
)
from provisioning.selectors import namespace_conflicts
from provisioning.selectors.names import physical_name_conflicts
from provisioning.services.audit import audit_record
from provisioning.specs import build_workspace_spec


def microservice_register(
    *,
    actor: Any,
    team: Team,
    name: str,
    namespace: str,
    service_accounts: list[str],
    resources: list[dict[str, Any]],
    clusters: list[Cluster],
    justification: str,
    description: str = "",
) -> ChangeRequest:
    """Register a microservice and open its ``create`` change request (a draft).

    The spec is validated for every target cluster before anything is written, and the rows are
    written in one transaction: a refused spec leaves nothing behind.
    """
    is_member = team.members.filter(pk=getattr(actor, "pk", None)).exists()
    if not (is_member or getattr(actor, "is_staff", False)):
        raise PermissionDenied(f"Only members of team {team.name} can register its services.")
    if not clusters:
        raise SpecError({"clusters": ["Choose at least one cluster to deploy to."]})
    if not justification.strip():
        raise SpecError({"justification": ["Say why the service needs this access."]})
    text_errors = free_text_errors(justification=justification, description=description)
    if text_errors:
        raise SpecError(text_errors)
    for cluster in clusters:
        spec = build_workspace_spec(
            microservice=name,
            namespace=namespace,
            service_accounts=service_accounts,
            resources=resources,
            cluster=cluster,
            name_scheme=NameScheme.CURRENT,  # a new service: no workspace has names yet
        )
        taken = physical_name_conflicts(spec=spec, microservice=None)
        if taken:
            raise SpecError(taken)
    conflicts = namespace_conflicts(
        team=team,
        microservice_name=name,
        namespace=namespace,
        service_accounts=service_accounts,
        clusters=clusters,
    )
    if conflicts:
        raise SpecError(conflicts)
    if Microservice.objects.filter(name=name, decommissioned_at__isnull=True).exists():
        raise SpecError(_name_taken(name))
    try:
        return _register(
            actor=actor,
            team=team,
            name=name,
            namespace=namespace,
            service_accounts=service_accounts,
            resources=resources,
            clusters=clusters,
            justification=justification,
            description=description,
        )
    except IntegrityError:
        # Registered concurrently by another request after the check above: the constraint
        # decided, and the loser gets the same answer as a later request would.
        raise SpecError(_name_taken(name)) from None


def _name_taken(name: str) -> dict[str, list[str]]:
    return {
        "microservice": [
            f"A microservice named '{name}' already exists; choose another name or change that one."
        ]
    }


def free_text_errors(**fields: str) -> dict[str, list[str]]:
    """Field → message for multi-line free-text fields holding NUL or other control characters
    (tabs and line breaks are fine)."""
    errors: dict[str, list[str]] = {}
    for field, value in fields.items():
        try:
            v.validate_no_control_characters(value, what=field, multiline=True)
        except ValidationError as exc:
            errors[field] = list(exc.messages)
    return errors


def _register(
    *,
    actor: Any,
    team: Team,
    name: str,
    namespace: str,
    service_accounts: list[str],
    resources: list[dict[str, Any]],
    clusters: list[Cluster],
    justification: str,
    description: str,
) -> ChangeRequest:
    with transaction.atomic():
        microservice = Microservice.objects.create(
            name=name,
            team=team,
            namespace=namespace,
            service_accounts=list(service_accounts),
            description=description,
            created_by=actor,
        )
        change = ChangeRequest.objects.create(
            microservice=microservice,
            kind=ChangeKind.CREATE,
            created_by=actor,
            justification=justification,
            spec={
                "namespace": namespace,
                "service_accounts": list(service_accounts),
                "resources": resources,
                "clusters": [c.name for c in clusters],
            },
        )
        audit_record(
            actor=actor,
            action="microservice.registered",
            obj=microservice,
            data={"change_request": change.pk, "clusters": [c.name for c in clusters]},
        )
    return change
