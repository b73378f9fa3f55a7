"""Terraform runs: enqueue, claim, stream the log, finish, and recover from lost workers/brokers.

Every transition is one conditional UPDATE (``filter(status=...).update(...)``), so a duplicate
task delivery, a racing reaper or a second worker finds nothing to change and does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from provisioning.models import Run, RunKind, RunStatus, Workspace, WorkspaceStatus
from provisioning.services.audit import audit_record

logger = logging.getLogger(__name__)
TRUNCATION_MARKER = "\n[log truncated: RUN_LOG_MAX_BYTES reached; later output was dropped]\n"


class RunConflict(Exception):
    """The workspace already has a queued or running run; the database refused a second one."""


def run_enqueue(
    *,
    workspace: Workspace,
    kind: str,
    spec: dict[str, Any],
    actor: Any = None,
    change_request: Any = None,
    plan_run: Run | None = None,
) -> Run:
    """Create a queued run and send it to a worker once the surrounding transaction commits."""
    try:
        with transaction.atomic():
            run = Run.objects.create(
                workspace=workspace,
                kind=kind,
                spec=spec,
                change_request=change_request,
                plan_run=plan_run,
                created_by=actor if getattr(actor, "pk", None) else None,
            )
    except IntegrityError as exc:
        raise RunConflict(
            f"Workspace {workspace} already has a queued or running run; wait for it to finish."
        ) from exc
    audit_record(
        actor=actor, action="run.queued", obj=run, data={"kind": kind, "workspace": workspace.pk}
    )
    transaction.on_commit(lambda: dispatch(run.pk, kind))
    return run


def dispatch(run_id: int, kind: str) -> bool:
    """Send the run to the broker; a broker that is down leaves it queued for the dispatcher."""
    from provisioning import tasks  # late: tasks import this module

    task = {
        RunKind.PLAN: tasks.plan,
        RunKind.DRIFT: tasks.plan,
        RunKind.APPLY: tasks.apply,
        RunKind.DESTROY: tasks.destroy,
    }[RunKind(kind)]
    try:
        task.delay(run_id)
    except Exception as exc:  # kombu raises several types; all mean "not sent"
        logger.warning("run %s not dispatched (%s); the dispatcher will retry", run_id, exc)
        return False
    return True


def run_claim(*, run_id: int) -> bool:
    """queued → running, exactly once, whatever the number of deliveries."""
    now = timezone.now()
    claimed = Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now
    )
    if claimed:
        run = Run.objects.get(pk=run_id)
        audit_record(actor=None, action="run.started", obj=run, data={"kind": run.kind})
    return bool(claimed)


def run_finish(
    *, run_id: int, status: str, error: str = "", exit_code: int | None = None, **fields: Any
) -> bool:
    """running → a final status; returns False if the run was reaped or finished meanwhile."""
    done = Run.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        status=status,
        error=error[:10000],
        exit_code=exit_code,
        finished_at=timezone.now(),
        current_step="",
        **fields,
    )
    if done:
        run = Run.objects.get(pk=run_id)
        audit_record(
            actor=None,
            action=f"run.{status}",
            obj=run,
            data={"kind": run.kind, "error": error[:500]},
        )
    return bool(done)


def run_set_step(*, run_id: int, step: str) -> None:
    Run.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        current_step=step, heartbeat_at=timezone.now()
    )


class RunLog:
    """Collects log lines and appends them to the Run in small batches while Terraform runs.

    Appends are ``log = log || chunk`` in SQL, so readers see the log grow; a background thread
    flushes at least every ``interval`` seconds and doubles as the run's heartbeat. The stored log
    is capped at RUN_LOG_MAX_BYTES with a marker saying so.
    """

    def __init__(self, run_id: int, *, interval: float = 1.0, max_bytes: int | None = None):
        self.run_id = run_id
        self.interval = interval
        self.max_bytes = max_bytes if max_bytes is not None else settings.RUN_LOG_MAX_BYTES
        self._pending: list[str] = []
        self._size = len(Run.objects.get(pk=run_id).log.encode())
        self._truncated = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RunLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()

    def write(self, line: str) -> None:
        with self._lock:
            self._pending.append(line + "\n")

    def _loop(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(self.interval):
                self.flush()
        finally:
            connection.close()  # this thread's own connection

    def flush(self) -> None:
        with self._lock:
            chunk, self._pending = "".join(self._pending), []
        chunk = self._capped(chunk)
        update: dict[str, Any] = {"heartbeat_at": timezone.now()}
        if chunk:
            update["log"] = Concat(F("log"), Value(chunk))
        Run.objects.filter(pk=self.run_id).update(**update)

    def _capped(self, chunk: str) -> str:
        if self._truncated or not chunk:
            return ""
        data = chunk.encode()
        room = self.max_bytes - self._size
        if len(data) <= room:
            self._size += len(data)
            return chunk
        self._truncated = True
        kept = data[: max(room, 0)].decode(errors="ignore")
        self._size = self.max_bytes
        return kept + TRUNCATION_MARKER


def runs_reap_interrupted(*, heartbeat_timeout: timedelta | None = None) -> list[int]:
    """Running runs whose worker stopped beating: mark them interrupted for a human to look at.

    The workspace's Terraform state lock, if the dead worker held one, is reported in the error
    and never forced: a human decides whether the other process is really gone.
    """
    timeout = (
        heartbeat_timeout
        if heartbeat_timeout is not None
        else timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT)
    )
    cutoff = timezone.now() - timeout
    reaped = []
    for run_id in Run.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff).values_list(
        "pk", flat=True
    ):
        message = (
            f"The worker stopped reporting for over {int(timeout.total_seconds())} s and "
            "the run was marked interrupted. If Terraform still holds the workspace's "
            "state lock, check that no process is running before `terraform force-unlock`;"
            " the portal never forces it."
        )
        if run_finish(run_id=run_id, status=RunStatus.INTERRUPTED, error=message):
            reaped.append(run_id)
    return reaped


def runs_dispatch_queued(*, older_than: timedelta | None = None) -> list[int]:
    """Re-send runs still queued after a while: their message was lost or never reached the
    broker (it was down). A duplicate delivery is harmless: the claim lets only one through."""
    age = older_than if older_than is not None else timedelta(seconds=settings.RUN_REDISPATCH_AFTER)
    cutoff = timezone.now() - age
    sent = []
    for run_id, kind in Run.objects.filter(
        status=RunStatus.QUEUED, created_at__lt=cutoff
    ).values_list("pk", "kind"):
        if dispatch(run_id, kind):
            sent.append(run_id)
    return sent


def wait_for_run(run_id: int, *, timeout: float = 300, poll: float = 0.5) -> Run:
    """Block until the run is final (tests, benchmarks and the CLI; never the web request)."""
    deadline = time.monotonic() + timeout
    while True:
        run = Run.objects.get(pk=run_id)
        if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {run.status} after {timeout:g} s")
        time.sleep(poll)


def workspaces_check_drift() -> list[int]:
    """Enqueue a drift-check plan for every applied workspace that is not busy.

    The plan renders the spec of the workspace's last successful apply, so any difference it
    finds was made outside the portal. A workspace with a queued or running run is skipped.
    """
    queued = []
    for workspace in Workspace.objects.filter(
        status__in=(WorkspaceStatus.APPLIED, WorkspaceStatus.DRIFTED)
    ):
        last = (
            workspace.runs.filter(kind=RunKind.APPLY, status=RunStatus.SUCCEEDED)
            .order_by("-finished_at")
            .first()
        )
        if last is None:
            continue
        try:
            queued.append(run_enqueue(workspace=workspace, kind=RunKind.DRIFT, spec=last.spec).pk)
        except RunConflict:
            continue
    return queued
