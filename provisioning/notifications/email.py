"""Email notifications, enqueued after the surrounding transaction commits."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from provisioning.models import Run, Workspace
from provisioning.permissions import SECURITY_GROUP

logger = logging.getLogger(__name__)
MAX_PROBES_IN_BODY = 20


def security_recipients() -> list[str]:
    """Members of the security group with an address, plus SECURITY_NOTIFY_EMAILS."""
    members = (
        get_user_model()
        .objects.filter(groups__name=SECURITY_GROUP, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    return sorted({*members, *settings.SECURITY_NOTIFY_EMAILS})


def requester_of(workspace: Workspace, run: Run | None) -> list[str]:
    user = None
    if run is not None and run.change_request_id is not None:
        user = run.change_request.created_by
    user = user or workspace.microservice.created_by
    return [user.email] if user is not None and user.email else []


def notify_verification_failed(
    *, workspace: Workspace, failing: list[dict[str, Any]], run: Run | None = None
) -> None:
    """Tell the requester and security which probes failed, once the result is committed."""
    from provisioning.notifications.tasks import send_email
    from provisioning.notifications.webhooks import webhook_verification_failed

    webhook_verification_failed(workspace=workspace, failing=failing)
    recipients = sorted({*requester_of(workspace, run), *security_recipients()})
    if not recipients:
        return
    subject = f"[IRSA portal] verification failed: {workspace}"
    lines = [
        f"The access of {workspace} was verified against AWS and does not match its policies.",
        "The apply was not undone; review the role before its pods rely on it.",
        "",
        "Failing probes (expected -> actual):",
    ]
    for probe in failing[:MAX_PROBES_IN_BODY]:
        lines.append(
            f"- {probe['id']}: {probe['action']} on {probe['resource']}: "
            f"{probe['expected']} -> {probe['actual']}"
        )
    if len(failing) > MAX_PROBES_IN_BODY:
        lines.append(f"... and {len(failing) - MAX_PROBES_IN_BODY} more on the service page.")
    body = "\n".join(lines)
    transaction.on_commit(lambda: _send(send_email, subject, body, recipients))


def _send(task: Any, subject: str, body: str, recipients: list[str]) -> None:
    try:
        task.delay(subject, body, recipients)
    except Exception:  # kombu raises several types; the audit event still records the failure
        logger.exception("the verification notification could not be enqueued")
