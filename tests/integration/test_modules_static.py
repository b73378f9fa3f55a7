"""Static checks of the Terraform modules with the real CLI and provider: `fmt` and `validate`.

Each module is copied to a temporary directory before `init`, so nothing (.terraform, lock files)
is written into the repository. The provider comes from the filesystem mirror through a CLI config
written for these tests; a shared plugin cache keeps the repeated `init` fast.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from provisioning.iam.spec import parse_workspace_spec
from provisioning.terraform.render import render_workspace

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES_DIR = REPO_ROOT / "terraform" / "modules"
MODULES = ("dynamodb-table", "irsa", "kms-key", "s3-bucket")
PROVIDER_MIRROR = "/opt/tf-plugins"
DEFAULT_TERRAFORM = "/usr/local/bin/terraform"
REFERENCE = REPO_ROOT / "docs" / "examples" / "reference-spec.json"
TIMEOUT_SECONDS = 300
CLI_CONFIG = """provider_installation {
  filesystem_mirror {
    path    = "%s"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
"""


@pytest.fixture(scope="module")
def tf_binary() -> str:
    binary = os.environ.get("TERRAFORM_BIN") or DEFAULT_TERRAFORM
    if not os.access(binary, os.X_OK):
        pytest.skip(f"no Terraform at {binary} (set TERRAFORM_BIN)")
    return binary


@pytest.fixture(scope="module")
def tf_env(tmp_path_factory) -> dict[str, str]:
    if not Path(PROVIDER_MIRROR).is_dir():
        pytest.skip(f"no provider mirror at {PROVIDER_MIRROR}")
    home = tmp_path_factory.mktemp("tf-cli")
    config = home / "terraform.rc"
    config.write_text(CLI_CONFIG % PROVIDER_MIRROR)
    cache = home / "plugin-cache"
    cache.mkdir()
    return {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(config),
        "TF_PLUGIN_CACHE_DIR": str(cache),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }


def terraform(
    binary: str, env: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def init_and_validate(binary: str, env: dict[str, str], workdir: Path) -> dict:
    init = terraform(binary, env, workdir, "init", "-backend=false", "-input=false", "-no-color")
    assert init.returncode == 0, init.stdout + init.stderr
    result = terraform(binary, env, workdir, "validate", "-json", "-no-color")
    return json.loads(result.stdout)


def test_modules_are_formatted(tf_binary: str, tf_env: dict[str, str]):
    result = terraform(
        tf_binary,
        tf_env,
        REPO_ROOT,
        "fmt",
        "-check",
        "-recursive",
        "-diff",
        "-no-color",
        str(MODULES_DIR),
    )
    hint = "run `terraform fmt -recursive terraform/modules`"
    assert result.returncode == 0, f"{hint}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("module", MODULES)
def test_module_validates(module: str, tf_binary: str, tf_env: dict[str, str], tmp_path: Path):
    workdir = tmp_path / module
    shutil.copytree(
        MODULES_DIR / module,
        workdir,
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl"),
    )
    report = init_and_validate(tf_binary, tf_env, workdir)
    assert report["valid"], json.dumps(report["diagnostics"], indent=1)


@pytest.mark.parametrize("sandbox_endpoint", [None, "http://127.0.0.1:4566"])
@pytest.mark.parametrize("backend", ["local", "pg", "s3"])
def test_rendered_root_validates(
    backend: str,
    sandbox_endpoint: str | None,
    tf_binary: str,
    tf_env: dict[str, str],
    tmp_path: Path,
):
    spec = parse_workspace_spec(json.loads(REFERENCE.read_text()))
    files = render_workspace(
        spec, region=spec.cluster.region, backend=backend, sandbox_endpoint=sandbox_endpoint
    )
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "modules").symlink_to(MODULES_DIR, target_is_directory=True)
    report = init_and_validate(tf_binary, tf_env, tmp_path)
    assert report["valid"], json.dumps(report["diagnostics"], indent=1)
