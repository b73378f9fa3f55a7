"""What a change request's plans would delete, and whether the requester confirmed it.

A plan that deletes (or replaces) a DynamoDB table or an S3 bucket lists what each holds in
``plan_summary.data_at_risk`` (``services.execution``). Such a change request waits, after its
plans, for the requester to type the service's name; reviewers cannot approve before. The
confirmation binds to the plans it was given for, so a re-plan asks again.
"""

from __future__ import annotations

from typing import Any

from provisioning.models import ChangeRequest, ChangeStatus, Run, RunStatus
from provisioning.selectors.changes import change_request_latest_plans


def plans_data_at_risk(plans: list[Run]) -> list[dict[str, Any]]:
    """Per plan that deletes a table or bucket: its cluster and the entries (counts each)."""
    return [
        {"cluster": p.workspace.cluster.name, "run": p.pk, "entries": entries}
        for p in plans
        if p.status == RunStatus.SUCCEEDED
        and (entries := (p.plan_summary or {}).get("data_at_risk"))
    ]


def plan_hashes(plans: list[Run]) -> dict[str, str]:
    return {str(p.pk): p.plan_sha256 for p in plans}


def change_request_data_loss(*, change_request: ChangeRequest) -> dict[str, Any]:
    """``at_risk`` (per cluster), ``required`` (the plans delete a table or bucket),
    ``confirmed`` (for exactly the current plans: by whom, when), ``pending`` (required and not
    confirmed: no approval) and ``waiting`` (pending while planned: the requester's turn)."""
    plans = change_request_latest_plans(change_request=change_request)
    at_risk = plans_data_at_risk(plans)
    confirmed = bool(
        at_risk
        and change_request.data_loss_confirmed_at is not None
        and change_request.data_loss_confirmed_plans == plan_hashes(plans)
    )
    return {
        "at_risk": at_risk,
        "required": bool(at_risk),
        "confirmed": confirmed,
        "confirmed_by": (
            change_request.data_loss_confirmed_by.get_username()
            if confirmed and change_request.data_loss_confirmed_by is not None
            else None
        ),
        "confirmed_at": change_request.data_loss_confirmed_at if confirmed else None,
        "pending": bool(at_risk and not confirmed),
        "waiting": bool(
            at_risk and not confirmed and change_request.status == ChangeStatus.PLANNED
        ),
    }


def data_loss_waiting_reason(*, change_request: ChangeRequest) -> str | None:
    """Why the request cannot be approved yet, or None."""
    if not change_request_data_loss(change_request=change_request)["pending"]:
        return None
    name = change_request.microservice.name
    return (
        f"Change request #{change_request.pk} deletes tables or buckets with their data; it "
        f"waits for the requester to confirm that by typing the service's name '{name}' on the "
        "request (or POST .../confirm-data-loss/) before it can be approved."
    )
