"""Terraform runs: enqueue, claim, stream the log, finish, and recover from lost workers/brokers.

Every transition is one conditional UPDATE (``filter(status=...).update(...)``), so a duplicate
task delivery, a racing reaper or a second worker finds nothing to change and does nothing.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Concat
from django.utils import timezone

from provisioning.models import (
    ACTIVE_RUN_STATUSES,
    Run,
    RunKind,
    RunStatus,
    Workspace,
)
from provisioning.notifications.webhooks import webhook_run_finished
from provisioning.redaction import redact_data, redact_text, secret_values
from provisioning.services.audit import audit_record
from provisioning.terraform import process

logger = logging.getLogger(__name__)
RUN_DIR_NAME = re.compile(r"^run(\d+)-[0-9a-f]{8}$")
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
    """running → a final status; returns False if the run was reaped or finished meanwhile.

    The error and every JSON field are redacted here, the one door a run's result goes through."""
    secrets = secret_values()
    error = redact_text(error, secrets=secrets)
    fields = {
        name: redact_data(value, secrets=secrets) if isinstance(value, dict | list) else value
        for name, value in fields.items()
    }
    with transaction.atomic():  # the run's end, its audit event and its webhook deliveries
        done = Run.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=status,
            error=error[:10000],
            exit_code=exit_code,
            finished_at=timezone.now(),
            current_step="",
            **fields,
        )
        if done:
            run = Run.objects.select_related("workspace__microservice", "workspace__cluster").get(
                pk=run_id
            )
            audit_record(
                actor=None,
                action=f"run.{status}",
                obj=run,
                data={"kind": run.kind, "error": error[:500]},
            )
            webhook_run_finished(run=run)
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
        # Known once per run: every line is redacted before it is stored (provisioning.redaction).
        self._secrets = secret_values()
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
        line = redact_text(line, secrets=self._secrets)
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
        # Held across the UPDATE: the final flush and the background one never reorder chunks.
        with self._lock:
            chunk, self._pending = "".join(self._pending), []
            chunk = self._capped(chunk)
            update: dict[str, Any] = {"heartbeat_at": timezone.now()}
            if chunk:
                update["log"] = Concat(F("log"), Value(chunk))
            Run.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(**update)

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


def run_record_process(*, run_id: int, pid: int, workdir: str) -> None:
    """Where the run's long Terraform command runs, so another worker can adopt it."""
    Run.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        pid=pid, host=socket.gethostname(), workdir=workdir, heartbeat_at=timezone.now()
    )


def run_claim_adoption(*, run_id: int, seen_heartbeat: Any, host: str) -> bool:
    """Compare-and-set on the stale heartbeat the caller saw: of two adopters (a restarted
    worker and the reaper, say) only the first moves it, and the run beats again at once."""
    return bool(
        Run.objects.filter(pk=run_id, status=RunStatus.RUNNING, heartbeat_at=seen_heartbeat).update(
            heartbeat_at=timezone.now(), host=host
        )
    )


def runs_reap_interrupted(
    *, heartbeat_timeout: timedelta | None = None, foreign_timeout: timedelta | None = None
) -> list[int]:
    """Running runs whose worker stopped beating: adopt them or mark them interrupted.

    A run on this host whose Terraform still runs (or finished and recorded its exit) is adopted
    and finished here, as its worker would have. A run whose Terraform is gone is interrupted
    and ends like any failure. A run on another host is left for that host's workers for
    RUN_FOREIGN_HOST_TIMEOUT, then interrupted. Returns the ids of the runs it adopted or ended.
    The workspace's Terraform state lock, if one is still held, is reported and never forced.
    """
    timeout = (
        heartbeat_timeout
        if heartbeat_timeout is not None
        else timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT)
    )
    foreign = (
        foreign_timeout
        if foreign_timeout is not None
        else timedelta(seconds=settings.RUN_FOREIGN_HOST_TIMEOUT)
    )
    host, now = socket.gethostname(), timezone.now()
    acted = []
    stale = Run.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=now - timeout)
    for run in stale.select_related("workspace", "change_request").order_by("pk"):
        if run.host and run.host != host and run.heartbeat_at > now - foreign:
            continue  # a worker on that host may still adopt it
        if run_recover(run=run, host=host, timeout=timeout):
            acted.append(run.pk)
    return acted


def run_recover(*, run: Run, host: str, timeout: timedelta) -> bool:
    """Adopt one stale run or end it as interrupted, after claiming it (see run_claim_adoption)."""
    from provisioning.services.execution import run_adopt, run_end_unsuccessfully

    launched = _adoptable(run, host)
    if not run_claim_adoption(run_id=run.pk, seen_heartbeat=run.heartbeat_at, host=host):
        return False
    if launched is not None:
        audit_record(
            actor=None,
            action="run.adopted",
            obj=run,
            data={"host": host, "pid": launched.pid, "command": launched.command},
        )
        run_adopt(run_id=run.pk, launched=launched)
        return True
    return run_end_unsuccessfully(
        run=run, status=RunStatus.INTERRUPTED, message=_interrupted_message(run, host, timeout)
    )


def _interrupted_message(run: Run, host: str, timeout: timedelta) -> str:
    seconds = int(timeout.total_seconds())
    release = "release it (workspace admin, 'Release the state lock')"
    if run.host and run.host != host:  # this host cannot see that host's processes
        return (
            f"The worker on {run.host} has not reported since "
            f"{run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC, so the run was marked interrupted; its "
            "Terraform may still be running there and hold the workspace's state lock, which a "
            f"later run then meets. Only once no Terraform of this workspace runs on {run.host}, "
            f"{release}; the portal never forces it."
        )
    return (
        f"The worker stopped reporting for over {seconds} s and its Terraform is gone without "
        "recording how it ended, so the run was marked interrupted. If Terraform still holds "
        f"the workspace's state lock, check that no process is running before you {release} "
        "or run `terraform force-unlock`; the portal never forces it."
    )


def _adoptable(run: Run, host: str) -> process.Launched | None:
    """The run's long Terraform command, if it runs on this host and is alive or finished."""
    from provisioning.services.execution import adoptable_command

    if run.host != host or not run.workdir or not run.pid:
        return None
    launched = process.latest(Path(run.workdir), run.pid)
    if launched is None or launched.command != adoptable_command(run):
        return None
    if launched.exit_status() is None and not process.launcher_running(run.pid, launched.prefix):
        return None
    return launched


def runs_adopt_on_worker_start() -> None:
    """A starting worker adopts what a dead worker on its host left running: at once, and
    again when a heartbeat that was still fresh at start has had time to go stale."""
    from django.db import connection

    try:
        runs_reap_interrupted()
        time.sleep(settings.RUN_HEARTBEAT_TIMEOUT + 1)
        runs_reap_interrupted()
    except Exception:  # a thread of the worker's main process: log, never take the worker down
        logger.exception("adoption at worker start failed; beat's reaper will try again")
    finally:
        connection.close()  # this thread's own connection


def dispatch_reconciliation(workspace_id: int) -> None:
    """After a failed or interrupted apply: refresh the inventory from state and list what AWS
    holds outside it. A broker that is down only delays it (the admin can run it again)."""
    from provisioning import tasks  # late: tasks import this module

    def send() -> None:
        try:
            tasks.reconcile_workspace.delay(workspace_id)
        except Exception as exc:  # kombu raises several types; all mean "not sent"
            logger.warning("reconciliation of workspace %s not dispatched (%s)", workspace_id, exc)

    transaction.on_commit(send)


def runs_sweep_workdirs(*, older_than: timedelta | None = None) -> list[str]:
    """Remove run directories left behind (a dead worker's, say): those whose run is final or
    unknown and that nothing touched for RUN_WORKDIR_MAX_AGE. Never a running run's directory,
    which an adopter may still need."""
    from provisioning.terraform.context import runs_dir

    age = older_than if older_than is not None else timedelta(seconds=settings.RUN_WORKDIR_MAX_AGE)
    cutoff = time.time() - age.total_seconds()
    active = {
        Path(w).name
        for w in Run.objects.filter(status__in=ACTIVE_RUN_STATUSES).values_list(
            "workdir", flat=True
        )
    }
    active_ids = set(
        Run.objects.filter(status__in=ACTIVE_RUN_STATUSES).values_list("pk", flat=True)
    )
    removed = []
    root = runs_dir()
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        match = RUN_DIR_NAME.match(path.name)
        if path.name in active or (match and int(match.group(1)) in active_ids):
            continue
        if path.is_dir() and path.stat().st_mtime < cutoff:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


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


DRIFT_PURGE_BATCH = 1000


def drift_runs_purge(*, batch_size: int = DRIFT_PURGE_BATCH) -> int:
    """Delete final drift checks older than DRIFT_RUN_RETENTION, except each workspace's latest
    (what its page shows), ``batch_size`` rows per statement; returns how many went.

    Drift runs are most of the database at scale (docs/deploy.md, capacity): thousands a day,
    each a summary and a log, none ever applied (no apply names one as its plan)."""
    cutoff = timezone.now() - timedelta(seconds=settings.DRIFT_RUN_RETENTION)
    latest = (
        Run.objects.filter(workspace_id=OuterRef("workspace_id"), kind=RunKind.DRIFT)
        .order_by("-created_at", "-pk")
        .values("pk")[:1]
    )
    old = (
        Run.objects.filter(kind=RunKind.DRIFT, created_at__lt=cutoff)
        .exclude(status__in=ACTIVE_RUN_STATUSES)
        .exclude(pk=Subquery(latest))
        .order_by("pk")
    )
    deleted = 0
    while True:
        batch = list(old.values_list("pk", flat=True)[:batch_size])
        if not batch:
            return deleted
        deleted += Run.objects.filter(pk__in=batch, kind=RunKind.DRIFT).delete()[0]
        if len(batch) < batch_size:
            return deleted


def workspaces_check_drift() -> list[int]:
    """Enqueue a drift-check plan for the workspaces due at this tick (their slot, or held back
    by the per-account cap before; see provisioning/services/drift.py).

    The plan renders the spec of the workspace's last successful apply, so any difference it
    finds was made outside the portal. A workspace with a queued or running run is skipped.
    """
    from provisioning.services.drift import workspaces_due_now

    queued = []
    for workspace in Workspace.objects.filter(pk__in=workspaces_due_now()).order_by("pk"):
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
