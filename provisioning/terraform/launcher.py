"""Start one Terraform command so that it outlives the worker that asked for it.

``python -m provisioning.terraform.launcher <prefix> <terraform> <args...>`` runs Terraform with
stdout and stderr going to ``<prefix>.out`` / ``<prefix>.err`` (files, not pipes: a dead reader
would kill the writer with SIGPIPE) and, when it ends, writes ``<prefix>.exit`` as JSON
``{"returncode": int, "signal": "SIGKILL" | null}``. The worker starts the launcher in a session
of its own and tails the files; if the worker dies, Terraform keeps going and whoever adopts the
run reads the same files. The exit file is written to a temporary name and renamed, so a reader
never sees half of it.

Argument lists only: the launcher never goes through a shell. The ``.exit`` file is absent only
while Terraform runs, or if the launcher itself was killed (then the run is interrupted).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

LAUNCHER_MODULE = "provisioning.terraform.launcher"
FILE_MODE = 0o600


def exit_record(returncode: int) -> dict[str, object]:
    """A negative return code is a signal death (subprocess's convention), named."""
    name = None
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
    return {"returncode": returncode, "signal": name}


def open_private(path: Path):
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE), "wb")


def _forward(child: subprocess.Popen) -> None:
    """SIGTERM/SIGINT to the launcher reach Terraform (which stops cleanly and releases its lock);
    the launcher stays to record how Terraform ended."""

    def handler(signum: int, frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, handler)


def launch(prefix: Path, argv: list[str]) -> int:
    with (
        open_private(prefix.with_suffix(".out")) as out,
        open_private(prefix.with_suffix(".err")) as err,
    ):
        try:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        except OSError as exc:
            err.write(f"Terraform could not start ({argv[0]}): {exc.strerror}\n".encode())
            returncode = 127
        else:
            _forward(child)
            returncode = child.wait()
    partial = prefix.with_suffix(".exit-partial")
    with open_private(partial) as handle:
        handle.write(json.dumps(exit_record(returncode)).encode())
    os.replace(partial, prefix.with_suffix(".exit"))
    return returncode


def main(args: list[str]) -> int:
    if len(args) < 2:
        print(
            "usage: python -m provisioning.terraform.launcher <prefix> <argv...>", file=sys.stderr
        )
        return 2
    launch(Path(args[0]), args[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
