"""Write helpers the pages and the REST API share, built on the change-request services.

They add the checks a caller at the boundary needs and the core services leave out, so that a
user error becomes a clear message instead of a database error (a 500).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from provisioning.models import (
    ChangeKind,
    ChangeRequest,
    Microservice,
    Review,
)
from provisioning.selectors_api import microservice_live_spec
from provisioning.services.changes import (
    TransitionError,
    change_request_approve,
    change_request_create,
)


def change_request_propose(
    *, actor: Any, microservice: Microservice, kind: str, spec: dict[str, Any], justification: str
) -> ChangeRequest:
    """``change_request_create``; a concurrent second proposal that only the database catches
    (the one-open-request constraint) becomes the same TransitionError as the service's check."""
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
        raise TransitionError(
            f"Microservice {microservice.name} already has an open change request; "
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
    """Approve only if the plans are still the ones the reviewer was shown (checked inside the
    approval's transaction); ``None`` skips the comparison for API callers that do not send it."""
    return change_request_approve(
        actor=actor, change_request=change_request, comment=comment, shown_plan_hashes=plan_hashes
    )
