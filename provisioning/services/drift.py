"""Drift checks that keep up with thousands of workspaces without a burst against IAM.

Beat calls ``workspaces_check_drift`` every ``DRIFT_CHECK_TICK`` seconds. The interval
(``DRIFT_CHECK_INTERVAL``) is cut into ``interval // tick`` slots; a workspace's slot is a
Fibonacci hash of its id, so each tick checks an even share. Per AWS account at most
``DRIFT_MAX_CONCURRENT_PER_ACCOUNT`` drift runs are queued or running at once (IAM throttles per
account); a workspace the cap holds back stays due and goes first at a later tick. An account whose
drift check was throttled (``Throttling``, ``Rate exceeded``) gets no new checks for
``DRIFT_THROTTLE_BACKOFF`` seconds; the throttled run ends cancelled with a message saying so,
never failed.

``due_workspaces`` is pure: the schedule is tested without a database or a clock.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from provisioning.models import RunKind, RunStatus, Workspace, WorkspaceStatus

# The error codes and messages AWS answers when a caller exceeds a request rate.
THROTTLED = re.compile(
    r"\b(Throttling|ThrottlingException|TooManyRequestsException|RequestLimitExceeded|"
    r"Rate exceeded|SlowDown)\b"
)
THROTTLED_MESSAGE = (
    "AWS throttled this drift check ({code}); it is not a failure. New drift checks for account "
    "{account} wait {backoff} s, and this workspace is checked again at a later tick."
)


@dataclass(frozen=True)
class Candidate:
    workspace_id: int
    account_id: str
    # The last drift check that ran to the end, else the last apply: what is known to match.
    last_checked: datetime | None
    # Only applied so far: its slot comes within an interval, so it is not overdue before two
    # (else every workspace applied in one day would be "overdue" in one burst).
    never_checked: bool = False


# Fibonacci hashing: consecutive ids land far apart and every slot gets an even share. A plain
# ``id % slots`` would put a service's workspaces in its dev/staging/prod accounts (consecutive
# ids) into slots that each hold one account only whenever the slot count divides evenly.
_GOLDEN = (5**0.5 - 1) / 2


def drift_slot(workspace_id: int, slots: int) -> int:
    """The tick of the interval this workspace is checked in, derived from its id."""
    return int((workspace_id * _GOLDEN) % 1.0 * max(slots, 1))


def slot_count(*, interval: int, tick: int) -> int:
    return max(interval // max(tick, 1), 1)


def current_slot(now: datetime, *, interval: int, tick: int) -> int:
    return int(now.timestamp() // max(tick, 1)) % slot_count(interval=interval, tick=tick)


def due_workspaces(
    candidates: Iterable[Candidate],
    *,
    now: datetime,
    interval: int,
    tick: int,
    cap: int,
    active: Mapping[str, int],
    backing_off: frozenset[str] = frozenset(),
) -> list[int]:
    """The workspaces to check at this tick: those in the current slot and those overdue (held
    back by the cap before), oldest check first, at most ``cap`` running per account."""
    slots = slot_count(interval=interval, tick=tick)
    slot = current_slot(now, interval=interval, tick=tick)
    overdue = {
        False: now - timedelta(seconds=interval),
        True: now - timedelta(seconds=2 * interval),
    }

    # In its slot, a workspace checked in the last half interval (a catch-up) waits a round.
    recent = now - timedelta(seconds=interval / 2)

    def due(c: Candidate) -> bool:
        if c.last_checked is None or c.last_checked <= overdue[c.never_checked]:
            return True
        return drift_slot(c.workspace_id, slots) == slot and c.last_checked <= recent

    ordered = sorted(
        (c for c in candidates if c.account_id not in backing_off and due(c)),
        key=lambda c: (c.last_checked or datetime.min.replace(tzinfo=now.tzinfo), c.workspace_id),
    )
    running = Counter(active)
    chosen = []
    for candidate in ordered:
        if running[candidate.account_id] >= cap:
            continue
        running[candidate.account_id] += 1
        chosen.append(candidate.workspace_id)
    return chosen


def throttle_code(text: str) -> str | None:
    """``Throttling`` / ``Rate exceeded`` / ... when a run's error says AWS throttled it."""
    match = THROTTLED.search(text or "")
    return match.group(1) if match else None


def throttled_message(*, code: str, account_id: str) -> str:
    return THROTTLED_MESSAGE.format(
        code=code, account=account_id, backoff=settings.DRIFT_THROTTLE_BACKOFF
    )


# --- reading the database ----------------------------------------------------------------------


def drift_candidates() -> list[Candidate]:
    """Applied workspaces with a successful apply, with their last drift check or apply."""
    done = Q(runs__status=RunStatus.SUCCEEDED)
    workspaces = (
        Workspace.objects.filter(status__in=(WorkspaceStatus.APPLIED, WorkspaceStatus.DRIFTED))
        .annotate(
            applied=Max("runs__finished_at", filter=done & Q(runs__kind=RunKind.APPLY)),
            checked=Max("runs__finished_at", filter=done & Q(runs__kind=RunKind.DRIFT)),
        )
        .filter(applied__isnull=False)
        .values_list("pk", "cluster__account_id", "applied", "checked")
    )
    return [
        Candidate(pk, account, max(applied, checked) if checked else applied, checked is None)
        for pk, account, applied, checked in workspaces
    ]


def active_drift_by_account() -> dict[str, int]:
    from provisioning.models import ACTIVE_RUN_STATUSES, Run

    rows = (
        Run.objects.filter(kind=RunKind.DRIFT, status__in=ACTIVE_RUN_STATUSES)
        .values_list("workspace__cluster__account_id", flat=True)
        .order_by()
    )
    return dict(Counter(rows))


def accounts_backing_off(now: datetime) -> frozenset[str]:
    from provisioning.models import Run

    since = now - timedelta(seconds=settings.DRIFT_THROTTLE_BACKOFF)
    rows = Run.objects.filter(
        kind=RunKind.DRIFT,
        status=RunStatus.CANCELLED,
        finished_at__gte=since,
        error__startswith="AWS throttled",
    ).values_list("workspace__cluster__account_id", flat=True)
    return frozenset(rows)


def workspaces_due_now(now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return due_workspaces(
        drift_candidates(),
        now=now,
        interval=settings.DRIFT_CHECK_INTERVAL,
        tick=settings.DRIFT_CHECK_TICK,
        cap=settings.DRIFT_MAX_CONCURRENT_PER_ACCOUNT,
        active=active_drift_by_account(),
        backing_off=accounts_backing_off(now),
    )
