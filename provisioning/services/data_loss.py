"""The requester's typed confirmation that a change request's plans may delete data."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from provisioning.iam.spec import SpecError
from provisioning.models import ChangeRequest, ChangeStatus
from provisioning.permissions import can_edit_microservice
from provisioning.selectors.changes import change_request_latest_plans
from provisioning.selectors.data_loss import plan_hashes, plans_data_at_risk
from provisioning.services.audit import audit_record
from provisioning.services.changes import TransitionError


def change_request_confirm_data_loss(
    *, actor: Any, change_request: ChangeRequest, confirm_name: str
) -> None:
    """The owning team confirms, after seeing the counts, that the planned deletions may go.

    Bound to the current plans (a re-plan voids it) and audited with the counts confirmed.
    """
    microservice = change_request.microservice
    if not can_edit_microservice(actor, microservice):
        raise PermissionDenied("Only the owning team can confirm that this change deletes data.")
    with transaction.atomic():
        change = ChangeRequest.objects.select_for_update().get(pk=change_request.pk)
        if change.status != ChangeStatus.PLANNED:
            raise TransitionError(
                f"Change request #{change.pk} is {change.get_status_display()}; the data loss "
                "is confirmed once its plans are ready (planned)."
            )
        plans = change_request_latest_plans(change_request=change)
        at_risk = plans_data_at_risk(plans)
        if not at_risk:
            raise TransitionError(
                f"Change request #{change.pk} deletes no table or bucket; nothing to confirm."
            )
        if confirm_name.strip() != microservice.name:
            raise SpecError(
                {
                    "confirm_name": [
                        f"Type the service's name '{microservice.name}' to confirm that the "
                        "tables and buckets listed (with their data) may be deleted."
                    ]
                }
            )
        hashes = plan_hashes(plans)
        ChangeRequest.objects.filter(pk=change.pk).update(
            data_loss_confirmed_by=actor,
            data_loss_confirmed_at=timezone.now(),
            data_loss_confirmed_plans=hashes,
        )
        audit_record(
            actor=actor,
            action="change_request.data_loss_confirmed",
            obj=change,
            data={"plan_hashes": hashes, "data_at_risk": at_risk},
        )
    change_request.refresh_from_db()
