"""`make run` (scripts/run.sh) supervises: a worker or beat that dies is started again, and SIGTERM
stops everything it started — nothing is left running.

The script runs for real, with a private Redis, SQLite and the sandbox on free ports, its var
directory in a scratch directory (which is also how its processes are told from any other).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.redis import RedisServer
from sandbox.server import find_free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


def eventually(check: Callable[[], object], what: str, timeout: float = 120) -> object:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return result


def processes_of(marker: str) -> list[int]:
    """Live processes whose environment carries `marker` (the script's own var directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in (entry / "environ").read_bytes():
                if (entry / "stat").read_text().split(") ")[1][0] != "Z":
                    found.append(int(entry.name))
    return found


def child_running(script: subprocess.Popen, needle: str) -> int | None:
    """The script's direct child whose command line contains `needle`."""
    path = Path(f"/proc/{script.pid}/task/{script.pid}/children")
    with contextlib.suppress(OSError):
        for pid in path.read_text().split():
            with contextlib.suppress(OSError):
                if (
                    needle
                    in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                ):
                    return int(pid)
    return None


def answers(port: int) -> bool:
    with contextlib.suppress(OSError):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as r:
            return r.status == 200
    return False


@contextlib.contextmanager
def launched(tmp_path: Path, broker_url: str) -> Iterator[tuple[subprocess.Popen, Path, int]]:
    """scripts/run.sh on free ports and SQLite; whatever it leaves is killed afterwards."""
    var = tmp_path / "var"
    port = find_free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "PORTAL_VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": broker_url,
        "PORT": str(port),
        "SANDBOX_PORT": str(find_free_port()),
        "TERRAFORM_WORK_DIR": str(tmp_path / "terraform"),
        "STOP_TIMEOUT": "15",
    }
    with (tmp_path / "run.log").open("w") as out:
        script = subprocess.Popen(
            ["bash", "scripts/run.sh"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield script, var, port
    finally:
        if script.poll() is None:
            script.kill()
        for pid in processes_of(str(var)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def run_script(tmp_path) -> Iterator[tuple[subprocess.Popen, Path, int]]:
    redis = RedisServer().start()
    try:
        with launched(tmp_path, redis.url) as started:
            yield started
    finally:
        redis.stop()


def reporter(tmp_path: Path, var: Path) -> Callable[[], str]:
    def report() -> str:
        logs = [tmp_path / "run.log", var / "worker.log", var / "beat.log"]
        return "\n".join(p.read_text()[-2500:] for p in logs if p.exists())

    return report


def stop_and_check_nothing_is_left(
    script: subprocess.Popen, var: Path, report, *, ctrl_c: bool = False
) -> None:
    started = processes_of(str(var))
    assert len(started) >= 5, started  # sandbox (+ moto), worker (+ pool), beat, runserver
    if ctrl_c:  # what a terminal does: SIGINT to the foreground process group
        os.killpg(script.pid, signal.SIGINT)
    else:
        script.send_signal(signal.SIGTERM)
    assert script.wait(timeout=60) == (130 if ctrl_c else 143), report()
    assert "run.sh: stopped" in report()
    assert processes_of(str(var)) == [], report()


def test_make_run_restarts_a_dead_worker_and_beat_and_stops_everything(run_script, tmp_path):
    script, var, port = run_script
    output = tmp_path / "run.log"
    report = reporter(tmp_path, var)

    eventually(lambda: answers(port) or script.poll() is not None, "the portal to answer", 180)
    assert script.poll() is None, report()
    worker = eventually(lambda: child_running(script, "portal worker"), "the worker")
    beat = eventually(lambda: child_running(script, "portal beat"), "beat")
    eventually(lambda: "ready." in (var / "worker.log").read_text(), "the worker to be ready")

    for name, pid in (("worker", worker), ("beat", beat)):
        os.kill(pid, signal.SIGKILL)  # as the OOM killer would
        eventually(lambda n=name: f"{n} restarted" in output.read_text(), f"{name} restarted", 30)
        again = child_running(script, f"portal {name}")
        assert again and again != pid, report()
        assert f"{name} exited (status 137)" in output.read_text()
    eventually(lambda: (var / "worker.log").read_text().count("ready.") == 2, "the new worker", 60)
    assert answers(port)
    stop_and_check_nothing_is_left(script, var, report)


def test_make_run_owns_the_redis_it_starts(tmp_path):
    """No Redis answers: the script starts one, restarts it when it dies (the worker reconnects)
    and stops it with the rest on Ctrl-C."""
    with launched(tmp_path, f"redis://127.0.0.1:{find_free_port()}/0") as (script, var, port):
        output = tmp_path / "run.log"
        report = reporter(tmp_path, var)
        worker_log = var / "worker.log"
        eventually(lambda: answers(port) or script.poll() is not None, "the portal", 180)
        eventually(lambda: worker_log.exists() and "ready." in worker_log.read_text(), "worker")
        redis = child_running(script, "redis-server")
        assert redis, report()
        os.kill(redis, signal.SIGKILL)
        eventually(lambda: "redis restarted" in output.read_text(), "Redis restarted", 30)
        eventually(lambda: worker_log.read_text().count("Connected to redis") >= 2, "reconnect", 60)
        assert child_running(script, "portal worker"), report()
        stop_and_check_nothing_is_left(script, var, report, ctrl_c=True)
