"""Decommission, as the pages and the REST API propose it: a change request whose spec keeps
the live spec for the record and targets no cluster."""

from __future__ import annotations

from typing import Any

from provisioning.models import ChangeKind, ChangeRequest, Microservice
from provisioning.selectors import microservice_live_spec
from provisioning.services.changes import change_request_create


def decommission_spec(*, microservice: Microservice) -> dict[str, Any]:
    return {**microservice_live_spec(microservice=microservice), "clusters": []}


def change_request_decommission(
    *, actor: Any, microservice: Microservice, justification: str
) -> ChangeRequest:
    return change_request_create(
        actor=actor,
        microservice=microservice,
        kind=ChangeKind.DECOMMISSION,
        spec=decommission_spec(microservice=microservice),
        justification=justification,
    )
