"""Decommission, as the pages and the REST API propose it: a change request whose spec keeps
the live spec for the record and targets no cluster."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from provisioning.models import ChangeKind, ChangeRequest, Microservice
from provisioning.permissions import can_edit_microservice
from provisioning.selectors import microservice_live_spec
from provisioning.services.changes import change_request_create


def decommission_spec(*, microservice: Microservice) -> dict[str, Any]:
    return {**microservice_live_spec(microservice=microservice), "clusters": []}


def change_request_decommission(
    *, actor: Any, microservice: Microservice, justification: str
) -> ChangeRequest:
    """A decommission plans first; when its plans delete tables or buckets, the request then
    waits for the requester to type the service's name under the counts
    (``services.data_loss``)."""
    if not can_edit_microservice(actor, microservice):
        raise PermissionDenied("Only the owning team can decommission this microservice.")
    return change_request_create(
        actor=actor,
        microservice=microservice,
        kind=ChangeKind.DECOMMISSION,
        spec=decommission_spec(microservice=microservice),
        justification=justification,
    )
