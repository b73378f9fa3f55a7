"""Terraform processes that outlive their worker: start through the launcher, tail, adopt, stop.

Each command gets a prefix ``<workdir>/.io/<NN>-<command>``; the launcher (``launcher.py``, run
by its file path with ``python -I`` so nothing of the worker's Python environment leaks in)
writes ``.out``, ``.err`` and, at the end, ``.exit`` there. Whoever follows a command — the worker
that started it, or the one that adopts it after that worker died — reads those files from the
start, line by line, until the exit file appears.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from provisioning.terraform import launcher

LogSink = Callable[[str], None]
IO_DIR = ".io"
LAUNCHER_PATH = Path(launcher.__file__).resolve()
POLL_SECONDS = 0.1
TERMINATE_GRACE_SECONDS = 30
LONG_COMMANDS = ("plan", "apply", "destroy", "import")


class TerraformGone(RuntimeError):
    """The launcher died without recording how Terraform ended (the run is interrupted)."""


class FollowTimeout(RuntimeError):
    pass


@dataclass(frozen=True)
class Launched:
    """One Terraform command: the launcher's pid and the prefix of its files."""

    pid: int
    prefix: Path
    process: subprocess.Popen | None = None  # only in the process that started it

    @property
    def command(self) -> str:
        return self.prefix.name.split("-", 1)[1]

    def exit_status(self) -> dict | None:
        try:
            return json.loads(self.prefix.with_suffix(".exit").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return launcher_running(self.pid, self.prefix)


def io_dir(workdir: Path) -> Path:
    path = workdir / IO_DIR
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def next_prefix(workdir: Path, command: str) -> Path:
    existing = sorted(io_dir(workdir).glob("*.out"))
    return workdir / IO_DIR / f"{len(existing) + 1:02d}-{command}"


def start(argv: list[str], *, workdir: Path, env: Mapping[str, str], command: str) -> Launched:
    """Start the launcher in a session of its own: the worker's death (and its process group's
    signals) leave Terraform running."""
    prefix = next_prefix(workdir, command)
    for suffix in (".out", ".err"):  # before the launcher runs: an adopter always finds them
        launcher.open_private(prefix.with_suffix(suffix)).close()
    process = subprocess.Popen(
        [sys.executable, "-I", str(LAUNCHER_PATH), str(prefix), *argv],
        cwd=workdir,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_for_exec(process, prefix)
    return Launched(pid=process.pid, prefix=prefix, process=process)


def _wait_for_exec(process: subprocess.Popen, prefix: Path, timeout: float = 2.0) -> None:
    """Popen can return while the child's command line still reads empty (the exec is not
    visible in /proc yet); an adopter identifies the launcher by that command line, so the pid
    is handed out only once it is recognisable (or the launcher already ended)."""
    deadline = time.monotonic() + timeout
    while not launcher_running(process.pid, prefix) and process.poll() is None:
        if time.monotonic() > deadline:
            return
        time.sleep(0.005)


def launcher_running(pid: int, prefix: Path) -> bool:
    """The pid is alive and is our launcher for exactly this command (pids get reused)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(LAUNCHER_PATH).encode() in args and str(prefix).encode() in args


def latest(workdir: Path, pid: int | None) -> Launched | None:
    """The last command started in this working directory, as an adopter finds it."""
    outs = sorted((workdir / IO_DIR).glob("*.out")) if (workdir / IO_DIR).is_dir() else []
    if not outs:
        return None
    return Launched(pid=pid or 0, prefix=outs[-1].with_suffix(""))


class _Tail:
    """Reads one growing file line by line; a last line without newline waits for the end."""

    def __init__(self, path: Path, sink: LogSink | None):
        self.path = path
        self.sink = sink
        self.handle = None
        self.partial = ""
        self.text: list[str] = []

    def read(self, *, final: bool = False) -> bool:
        if self.handle is None:
            if not self.path.exists():
                return False
            self.handle = self.path.open(encoding="utf-8", errors="replace", newline="")
        chunk = self.handle.read()
        data = self.partial + chunk
        lines = data.split("\n")
        self.partial = lines.pop()
        if final and self.partial:
            lines.append(self.partial)
            self.partial = ""
        for line in lines:
            self.text.append(line + "\n")
            if self.sink is not None:
                self.sink(line)
        return bool(chunk)

    def close(self) -> str:
        if self.handle is not None:
            self.handle.close()
        return "".join(self.text)


def follow(
    launched: Launched,
    *,
    sink: LogSink,
    stdout_sink: LogSink | None,
    timeout: float,
) -> tuple[int, str, str]:
    """Tail the command's files into the sinks until it ends; (returncode, stdout, stderr).

    The exit file is checked before each read, so the read after it appears is the last one and
    nothing Terraform printed is left behind.
    """
    out = _Tail(launched.prefix.with_suffix(".out"), stdout_sink)
    err = _Tail(launched.prefix.with_suffix(".err"), sink)
    deadline = time.monotonic() + timeout
    try:
        while True:
            status = launched.exit_status()
            alive = status is None and launched.alive()
            if status is None and not alive:
                status = launched.exit_status()  # it may have ended between the two checks
            progressed = out.read(final=status is not None) | err.read(final=status is not None)
            if status is not None:
                return int(status["returncode"]), out.close(), err.close()
            if not alive:
                raise TerraformGone(
                    f"terraform {launched.command} (launcher pid {launched.pid}) is gone "
                    "without recording how it ended"
                )
            if time.monotonic() > deadline:
                stop(launched)
                raise FollowTimeout(err.close())
            if not progressed:
                _pause(launched)
    finally:
        out.close()
        err.close()


def _pause(launched: Launched) -> None:
    """Wait for more output: the starter waits on its launcher, so the end of a command is seen
    at once rather than up to a poll interval later (five commands a plan + apply); an adopter,
    which holds no child to wait on, polls."""
    if launched.process is None:
        time.sleep(POLL_SECONDS)
        return
    try:
        launched.process.wait(timeout=POLL_SECONDS)
    except subprocess.TimeoutExpired:
        pass


def stop(launched: Launched, *, grace: float = TERMINATE_GRACE_SECONDS) -> None:
    """SIGTERM to the launcher, which passes it to Terraform once (a second one would make
    Terraform abandon the call without releasing its lock); then SIGKILL to the whole group."""
    try:
        os.kill(launched.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while launched.alive() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    if launched.alive():
        try:
            os.killpg(launched.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if launched.process is not None:
        launched.process.wait()


def describe_exit(returncode: int) -> str:
    """ "exit code 1", or "killed by SIGKILL" for a signal death (a negative return code)."""
    record = launcher.exit_record(returncode)
    return f"killed by {record['signal']}" if record["signal"] else f"exit code {returncode}"
