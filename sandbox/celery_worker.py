"""A real `celery -A portal worker --concurrency 1` process for tests and benchmarks.

Started with an explicit environment (the broker URL, database and AWS settings of the caller's
stack), its output in a log file; `stop` asks it to finish (SIGTERM to its process group),
`kill` ends it and its pool at once, as an OOM kill or a lost node would; `kill_pool_child`
SIGKILLs only the pool process running the task (the main process stays and forks a new one), as
an OOM kill of the busy child would. A Terraform the child started runs in its own session and is
not touched by that. ``host`` runs the worker in a UTS namespace of its own under that host name
(root only), so the portal and Terraform see it as a worker on another machine; ``pause`` stops
the worker's processes (not its Terraform), as a node cut off from the database would look.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class CeleryWorker:
    def __init__(
        self,
        *,
        env: Mapping[str, str],
        log: Path,
        name: str = "",
        queue: str = "celery",
        ready_timeout: float = 90,
        concurrency: int = 1,
        host: str = "",
    ) -> None:
        self.log = log
        self.handle = log.open("w")
        argv = [sys.executable, "-m", "celery", "-A", "portal", "worker"]
        argv += ["--loglevel", "INFO", "--concurrency", str(concurrency), "--queues", queue]
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        if name:
            argv += ["-n", f"{name}@%h"]
        if host:  # exec keeps the pid: self.process is still the worker's main process
            argv = ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', host, *argv]
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=dict(env),
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_timeout
        while "ready." not in log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"celery worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def pool_pids(self) -> list[int]:
        """The prefork pool's processes: the main process's direct children."""
        return _children(self.process.pid)

    def kill_pool_child(self) -> int:
        (child,) = self.pool_pids()  # --concurrency 1
        os.kill(child, signal.SIGKILL)
        return child

    def kill_worker_only(self) -> None:
        """SIGKILL the main process and its pool, not what they started in sessions of their own
        (a Terraform launcher): a node's worker container restarting, say."""
        for pid in [self.process.pid, *self.pool_pids()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def pause(self) -> None:
        """SIGSTOP the main process and its pool: no task progress, no heartbeat."""
        for pid in [self.process.pid, *self.pool_pids()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in [self.process.pid, *self.pool_pids()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop(self, timeout: float = 60) -> None:
        if self.process.poll() is None:
            self.resume()  # a paused worker would not act on SIGTERM
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.handle.close()


def _children(pid: int) -> list[int]:
    with contextlib.suppress(FileNotFoundError):
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found
