"""Declarative specs: make a microservice's proposed spec equal a desired one, idempotently.

A pipeline sends the whole desired spec every time; this decides between registering the
service, opening a change request, and doing nothing, so the pipeline never has to.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from provisioning import selectors
from provisioning.iam.spec import SpecError
from provisioning.models import (
    OPEN_CHANGE_STATUSES,
    ChangeKind,
    ChangeRequest,
    ChangeStatus,
    Cluster,
    Microservice,
    Team,
)
from provisioning.permissions import can_edit_microservice
from provisioning.services.changes import (
    TransitionError,
    change_request_create,
    change_request_submit,
)
from provisioning.services.microservices import microservice_register


class OpenRequestDiffers(TransitionError):
    """Another open request proposes something else; the pipeline must wait for or cancel it."""

    def __init__(self, change: ChangeRequest) -> None:
        self.change_request_id = change.pk
        super().__init__(
            f"Change request #{change.pk} ({change.get_status_display()}) already proposes a "
            "different spec; cancel it or let it finish, then send the spec again."
        )


def spec_normalize(spec: dict[str, Any]) -> dict[str, Any]:
    """Order-insensitive form of a spec, for comparing desired with proposed or live."""
    resources = sorted(
        (
            {
                "kind": r.get("kind"),
                "name": r.get("name"),
                "access": r.get("access"),
                "settings": r.get("settings") or {},
            }
            for r in spec.get("resources", [])
        ),
        key=lambda r: (str(r["kind"]), str(r["name"])),
    )
    return {
        "namespace": spec.get("namespace"),
        "service_accounts": sorted(spec.get("service_accounts", [])),
        "resources": resources,
        "clusters": sorted(set(spec.get("clusters", []))),
    }


def microservice_spec_apply(
    *,
    actor: Any,
    name: str,
    team: Team | None,
    spec: dict[str, Any],
    clusters: list[Cluster],
    justification: str,
    description: str = "",
    submit: bool = True,
) -> tuple[ChangeRequest, bool]:
    """Register, propose or no-op; returns the change request and whether it is new.

    ``submit`` also submits a draft (new or matching) so its plans are queued.
    """
    existing = Microservice.objects.filter(name=name).select_related("team").first()
    if existing is None:
        if team is None:
            raise _team_required()
        change = microservice_register(
            actor=actor,
            team=team,
            name=name,
            justification=justification,
            description=description,
            clusters=clusters,
            **{k: spec[k] for k in ("namespace", "service_accounts", "resources")},
        )
        return _maybe_submit(actor, change, submit), True
    if not can_edit_microservice(actor, existing):
        raise PermissionDenied(
            f"Microservice {name} belongs to team {existing.team.name}; only its members "
            "can change it. Choose another name for a new service."
        )
    if team is not None and team.pk != existing.team_id:
        raise TransitionError(
            f"Microservice {name} belongs to team {existing.team.name}; a spec cannot move it "
            "to another team."
        )
    change, created = _propose(actor, existing, spec, justification)
    return _maybe_submit(actor, change, submit), created


def _propose(
    actor: Any, microservice: Microservice, spec: dict[str, Any], justification: str
) -> tuple[ChangeRequest, bool]:
    desired = spec_normalize(spec)
    open_change = microservice.change_requests.filter(status__in=OPEN_CHANGE_STATUSES).first()
    if open_change is not None:
        if spec_normalize(open_change.spec) == desired:
            return open_change, False
        raise OpenRequestDiffers(open_change)
    live = selectors.microservice_live_spec(microservice=microservice)
    if spec_normalize(live) == desired and microservice.decommissioned_at is None:
        latest = microservice.change_requests.exclude(kind=ChangeKind.DECOMMISSION)
        newest = latest.order_by("-pk").first()
        if newest is not None:
            return newest, False
    change = change_request_create(
        actor=actor,
        microservice=microservice,
        kind=ChangeKind.CHANGE,
        spec=dict(spec),
        justification=justification,
    )
    return change, True


def _maybe_submit(actor: Any, change: ChangeRequest, submit: bool) -> ChangeRequest:
    if submit and change.status == ChangeStatus.DRAFT:
        change_request_submit(actor=actor, change_request=change)
        change.refresh_from_db()
    return change


def _team_required() -> SpecError:
    return SpecError({"team": ["A new microservice needs its team: name one of your teams."]})
