from __future__ import annotations

from typing import Any

from django.db import models

from provisioning.models import AuditEvent
from provisioning.redaction import redact_data


def audit_record(
    *, actor: Any, action: str, obj: models.Model, data: dict[str, Any] | None = None
) -> AuditEvent:
    """Append one audit event. ``actor`` is a user or None for the system (workers, beat).

    ``data`` is redacted (provisioning.redaction): run errors and Terraform output end up here."""
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        actor=actor if is_user else None,
        actor_name=actor.get_username() if is_user else "system",
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        data=redact_data(data or {}),
    )
