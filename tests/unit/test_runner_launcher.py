"""The launcher and the tailing follower, with a small Python program standing in for Terraform."""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

from provisioning.terraform import process
from provisioning.terraform.launcher import exit_record


def fake_terraform(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def run(tmp_path: Path, code: str, **follow: object) -> tuple[int, str, str, list[str]]:
    lines: list[str] = []
    launched = process.start(fake_terraform(code), workdir=tmp_path, env={}, command="apply")
    rc, out, err = process.follow(
        launched, sink=lines.append, stdout_sink=lines.append, timeout=30, **follow
    )
    return rc, out, err, lines


def test_output_reaches_the_sinks_and_the_exit_is_recorded(tmp_path):
    code = "import sys; print('one'); print('two', file=sys.stderr); sys.stdout.write('tail')"
    rc, out, err, lines = run(tmp_path, code + "; sys.exit(3)")
    assert rc == 3
    assert out == "one\ntail\n" and err == "two\n"
    assert sorted(lines) == ["one", "tail", "two"]
    prefix = tmp_path / ".io" / "01-apply"
    for suffix in (".out", ".err", ".exit"):
        assert stat.S_IMODE(prefix.with_suffix(suffix).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / ".io").stat().st_mode) == 0o700


def test_a_signal_death_is_recorded_and_named(tmp_path):
    rc, *_ = run(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert rc == -9
    assert exit_record(rc) == {"returncode": -9, "signal": "SIGKILL"}
    assert process.describe_exit(rc) == "killed by SIGKILL"
    assert process.describe_exit(1) == "exit code 1"


def test_terraform_outlives_the_process_that_started_it(tmp_path):
    """The launcher is in its own session: an adopter that never started it still follows it to
    the end, from the first line, and recognises it by its command line."""
    code = "import time; print('started', flush=True); time.sleep(1.5); print('done')"
    launched = process.start(fake_terraform(code), workdir=tmp_path, env={}, command="apply")
    assert os.getsid(launched.pid) == launched.pid
    adopted = process.latest(tmp_path, launched.pid)
    assert adopted is not None and adopted.command == "apply" and adopted.process is None
    assert process.launcher_running(launched.pid, adopted.prefix)
    assert not process.launcher_running(os.getpid(), adopted.prefix)
    lines: list[str] = []
    rc, _, _ = process.follow(adopted, sink=lines.append, stdout_sink=lines.append, timeout=30)
    assert rc == 0 and lines == ["started", "done"]
    launched.process.wait()


def test_a_launcher_killed_without_an_exit_record_is_gone(tmp_path):
    launched = process.start(
        fake_terraform("import time; time.sleep(30)"), workdir=tmp_path, env={}, command="plan"
    )
    time.sleep(0.5)
    os.killpg(launched.pid, signal.SIGKILL)
    with pytest.raises(process.TerraformGone, match="without recording how it ended"):
        process.follow(launched, sink=lambda line: None, stdout_sink=None, timeout=30)


def test_a_timeout_stops_terraform_through_the_launcher_once(tmp_path):
    """SIGTERM reaches Terraform once (a second would abandon its state lock); the launcher
    stays to record how it ended."""
    code = (
        "import signal, sys, time\n"
        "seen = []\n"
        "def on_term(*_):\n"
        "    seen.append(1)\n"
        "    print('terms', len(seen), flush=True)\n"
        "    time.sleep(0.5)\n"
        "    sys.exit(1)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    launched = process.start(fake_terraform(code), workdir=tmp_path, env={}, command="apply")
    lines: list[str] = []
    with pytest.raises(process.FollowTimeout):
        process.follow(launched, sink=lines.append, stdout_sink=lines.append, timeout=1.5)
    assert launched.exit_status() == {"returncode": 1, "signal": None}
    assert (tmp_path / ".io" / "01-apply.out").read_text() == "ready\nterms 1\n"
