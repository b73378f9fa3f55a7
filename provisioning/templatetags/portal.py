"""Small display helpers for the templates."""

from __future__ import annotations

from datetime import timedelta

from django import template

from provisioning.selectors import SERVICE_STATES

register = template.Library()

_RUN_OUTCOMES = {
    "succeeded": "Succeeded",
    "failed": "Failed",
    "interrupted": "Interrupted (the worker stopped)",
    "cancelled": "Cancelled",
}


@register.filter
def state_label(state: str) -> str:
    """A microservice state (``selectors.SERVICE_STATES``) in words."""
    return SERVICE_STATES.get(state, state)


@register.filter
def age(delta: timedelta | None) -> str:
    """How long something has waited, in the largest sensible unit: "3 d 4 h", "25 min"."""
    if delta is None:
        return "—"
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


@register.filter
def run_outcome(run: object) -> str:
    """What became of a run, without Terraform's exit-code jargon: a plan that found changes
    exits 2 and that is a success, not something a reader must decode."""
    status = getattr(run, "status", "")
    label = _RUN_OUTCOMES.get(status) or getattr(run, "get_status_display", lambda: status)()
    if status == "succeeded" and getattr(run, "kind", "") in ("plan", "drift"):
        has_changes = getattr(run, "has_changes", None)
        if has_changes is True:
            return f"{label} · changes to apply" if run.kind == "plan" else f"{label} · drift found"
        if has_changes is False:
            return f"{label} · no changes"
    return label


@register.filter
def reviews_for(user: object) -> bool:
    """Whether the navigation offers the review queue and the audit trail."""
    from provisioning.permissions import is_reviewer

    return bool(getattr(user, "is_authenticated", False) and is_reviewer(user))


INIT_COMMAND = "$ terraform init"
COMMAND_PREFIX = "\n$ terraform "


def split_init(log: str) -> tuple[str, str]:
    """The log's ``terraform init`` section (provider and lock-file noise) and the rest, once a
    later command has started; until then everything is "the rest", so a live init shows."""
    if not log.startswith(INIT_COMMAND):
        return "", log
    cut = log.find(COMMAND_PREFIX)
    if cut < 0:
        return "", log
    return log[: cut + 1], log[cut + 1 :]


@register.filter
def log_sections(log: str) -> dict[str, str]:
    init, rest = split_init(log or "")
    return {"init": init, "rest": rest}


@register.filter
def elapsed(run: object) -> str:
    """How long the run took, or has been running (until now)."""
    from django.utils import timezone

    started = getattr(run, "started_at", None)
    if started is None:
        return ""
    seconds = int(((getattr(run, "finished_at", None) or timezone.now()) - started).total_seconds())
    minutes, seconds = divmod(max(seconds, 0), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


@register.filter
def waiting_for(change: object) -> str:
    """How long a planned request has waited for review (since its plans finished)."""
    from django.utils import timezone

    since = getattr(change, "plans_finished_at", None) or getattr(change, "created_at", None)
    return age(timezone.now() - since) if since else "—"
