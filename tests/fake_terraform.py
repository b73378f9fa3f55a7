"""A fake Terraform CLI for tests that must not run the real one: a shell script set as
TERRAFORM_BIN. It answers ``version -json`` like Terraform and, for every other command, prints
what the test gives it on stdout and stderr and exits with the test's code."""

from __future__ import annotations

import shlex
from pathlib import Path

VERSION_JSON = '{"terraform_version": "1.11.4", "platform": "linux_amd64"}'


def fake_terraform(
    directory: Path, *, stdout: str = "", stderr: str = "", exit_code: dict[str, int] | None = None
) -> Path:
    """Write the script; ``exit_code`` maps a command (init, plan, apply ...) to its exit code
    (0 when not listed)."""
    codes = exit_code or {}
    cases = "".join(f"  {command}) code={code} ;;\n" for command, code in codes.items())
    script = directory / "terraform"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = version ]; then echo {shlex.quote(VERSION_JSON)}; exit 0; fi\n'
        "code=0\n"
        f'case "$1" in\n{cases}esac\n'
        f"printf '%s\\n' {shlex.quote(stdout)}\n"
        f"printf '%s\\n' {shlex.quote(stderr)} >&2\n"
        'exit "$code"\n'
    )
    script.chmod(0o755)
    return script
