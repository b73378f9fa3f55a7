"""The drift schedule: an even share per tick, a cap per AWS account, catch-up of what the cap
held back, a pause for a throttled account (pure; no database, no clock)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from provisioning.services.drift import (
    Candidate,
    drift_slot,
    due_workspaces,
    slot_count,
    throttle_code,
)

INTERVAL, TICK = 3600, 60
START = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)


def simulate(accounts: dict[int, str], *, cap: int, intervals: int = 2):
    """Tick through whole intervals; every check finishes within its tick. Returns the checks
    of each tick as (tick, workspace id) and the history per workspace."""
    applied = START - timedelta(seconds=INTERVAL / 2)  # applied before: due at its own slot
    last: dict[int, datetime] = dict.fromkeys(accounts, applied)
    checked: set[int] = set()
    ticks: dict[int, list[int]] = {}
    for n in range(intervals * INTERVAL // TICK):
        now = START + timedelta(seconds=n * TICK)
        candidates = [Candidate(w, accounts[w], last[w], w not in checked) for w in accounts]
        chosen = due_workspaces(
            candidates, now=now, interval=INTERVAL, tick=TICK, cap=cap, active={}
        )
        ticks[n] = chosen
        for w in chosen:
            last[w] = now + timedelta(seconds=20)
            checked.add(w)
    return ticks


def test_slots_spread_ids_evenly():
    slots = slot_count(interval=INTERVAL, tick=TICK)
    counts = Counter(drift_slot(w, slots) for w in range(1, 6001))
    assert slots == 60 and len(counts) == 60
    assert 97 <= min(counts.values()) <= max(counts.values()) <= 103
    # A service's workspaces in three accounts have consecutive ids: they share no slot.
    assert len({drift_slot(w, slots) for w in (301, 302, 303)}) == 3


def test_every_workspace_once_per_interval_and_no_account_beyond_the_cap_in_a_tick():
    accounts = {w: f"acct{w % 3}" for w in range(1, 1201)}  # 1,200 workspaces, 3 accounts
    ticks = simulate(accounts, cap=10)
    per_tick_account = [Counter(accounts[w] for w in chosen) for chosen in ticks.values()]
    assert max(max(c.values(), default=0) for c in per_tick_account) <= 10
    # Evenly spread: about 20 a tick (1,200 / 60 slots), never a burst.
    assert all(17 <= len(chosen) <= 23 for chosen in ticks.values())
    seen = Counter(w for chosen in ticks.values() for w in chosen)
    assert set(seen.values()) == {2}, "each workspace once in each of the two intervals"


def test_the_cap_holds_back_and_the_next_ticks_catch_up():
    accounts = {w: "busy" for w in range(1, 601)}  # 10 per slot, cap 4
    ticks = simulate(accounts, cap=4, intervals=3)
    assert max(len(chosen) for chosen in ticks.values()) == 4
    checks: dict[int, list[int]] = defaultdict(list)
    for n, chosen in ticks.items():
        for w in chosen:
            checks[w].append(n)
    # 600 workspaces at 4 a tick need 150 ticks per round: every one is checked, the gaps are
    # bounded, and nobody waits forever.
    assert len(checks) == 600
    assert all(len(ns) >= 1 for ns in checks.values())
    assert sum(len(chosen) for chosen in ticks.values()) == 4 * len(ticks)


def test_active_runs_count_against_the_cap_and_a_throttled_account_waits():
    now = START
    long_ago = now - timedelta(days=1)
    candidates = [Candidate(w, "a" if w <= 5 else "b", long_ago) for w in range(1, 11)]
    chosen = due_workspaces(
        candidates, now=now, interval=INTERVAL, tick=TICK, cap=3, active={"a": 2}
    )
    assert Counter("a" if w <= 5 else "b" for w in chosen) == {"a": 1, "b": 3}
    paused = due_workspaces(
        candidates,
        now=now,
        interval=INTERVAL,
        tick=TICK,
        cap=3,
        active={},
        backing_off=frozenset({"b"}),
    )
    assert paused == [1, 2, 3]


def test_throttling_is_recognised_in_terraforms_error():
    error = (
        "Error: reading IAM Role (irsa-x): operation error IAM: GetRole, exceeded maximum number "
        "of attempts, 3, https response error StatusCode: 400, api error Throttling: Rate exceeded"
    )
    assert throttle_code(error) == "Throttling"
    assert throttle_code("api error ThrottlingException: slow down") == "ThrottlingException"
    assert throttle_code("AccessDenied: not authorized") is None
