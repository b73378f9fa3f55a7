"""Write helpers the pages and the REST API share, built on the change-request services.

They add the checks a caller at the boundary needs and the core services leave out, so that a
user error becomes a clear message instead of a database error (a 500).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from provisioning.models import (
    OPEN_CHANGE_STATUSES,
    ChangeKind,
    ChangeRequest,
    Microservice,
    Review,
)
from provisioning.selectors_api import change_request_latest_plans, microservice_live_spec
from provisioning.services.changes import (
    TransitionError,
    change_request_approve,
    change_request_create,
)


def change_request_propose(
    *, actor: Any, microservice: Microservice, kind: str, spec: dict[str, Any], justification: str
) -> ChangeRequest:
    """``change_request_create``, refusing with a clear message what the database would refuse.

    A microservice has at most one open change request (a constraint); the savepoint keeps a
    refused insert from breaking the caller's transaction.
    """
    if microservice.decommissioned_at is not None:
        raise TransitionError(
            f"Microservice {microservice.name} was decommissioned; register a new one instead."
        )
    try:
        with transaction.atomic():
            return change_request_create(
                actor=actor,
                microservice=microservice,
                kind=kind,
                spec=spec,
                justification=justification,
            )
    except IntegrityError:
        open_change = microservice.change_requests.filter(status__in=OPEN_CHANGE_STATUSES).first()
        if open_change is None:
            raise
        raise TransitionError(
            f"Microservice {microservice.name} already has an open change request "
            f"#{open_change.pk} ({open_change.get_status_display()}); "
            "cancel it or let it finish first."
        ) from None


def decommission_spec(*, microservice: Microservice) -> dict[str, Any]:
    """A decommission keeps the live spec for the record and targets no cluster."""
    return {**microservice_live_spec(microservice=microservice), "clusters": []}


def change_request_decommission(
    *, actor: Any, microservice: Microservice, justification: str
) -> ChangeRequest:
    return change_request_propose(
        actor=actor,
        microservice=microservice,
        kind=ChangeKind.DECOMMISSION,
        spec=decommission_spec(microservice=microservice),
        justification=justification,
    )


def change_request_approve_shown(
    *,
    actor: Any,
    change_request: ChangeRequest,
    plan_hashes: dict[str, str] | None,
    comment: str = "",
) -> Review:
    """Approve, but only if the plans are still the ones the reviewer was shown.

    ``plan_hashes`` maps plan run id to plan sha256 as displayed; ``None`` skips the comparison
    (API callers that do not send them). A re-plan between page load and click is refused.
    """
    if plan_hashes is not None:
        current = {
            str(p.pk): p.plan_sha256
            for p in change_request_latest_plans(change_request=change_request)
        }
        if current != {str(k): v for k, v in plan_hashes.items()}:
            raise TransitionError(
                f"The plans of change request #{change_request.pk} changed since they were "
                "shown; review the new plans before approving."
            )
    return change_request_approve(actor=actor, change_request=change_request, comment=comment)
