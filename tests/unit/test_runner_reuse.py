"""A parked plan directory is taken over by one run only, re-rendered, and its `init` skipped
only when it was made for the same Terraform and backend (a stand-in Terraform script)."""

from __future__ import annotations

from pathlib import Path

from provisioning.terraform.backend import BackendConfig
from provisioning.terraform.runner import INIT_STAMP, PLAN_FILE, Toolchain, WorkspaceRunner
from tests.fake_terraform import fake_terraform


def runner(tmp_path: Path, name: str, files: dict[str, str], *, reuse=None, state="a.tfstate"):
    (tmp_path / "modules").mkdir(exist_ok=True)
    lines: list[str] = []
    return lines, WorkspaceRunner(
        toolchain=Toolchain(
            binary=fake_terraform(tmp_path), cli_config=tmp_path / "cli.tfrc", version="1.11.4"
        ),
        workdir=tmp_path / "runs" / name,
        files=files,
        modules_dir=tmp_path / "modules",
        backend=BackendConfig(kind="local", options={"path": state}),
        extra_env={},
        sink=lines.append,
        reuse=reuse,
    )


def test_a_parked_directory_is_taken_once_and_rendered_afresh(tmp_path):
    _, plan = runner(tmp_path, "run1-aaaaaaaa", {"main.tf.json": "plan", "old.tf.json": "x"})
    plan.init()
    (plan.workdir / PLAN_FILE).write_bytes(b"plan bytes")
    parked = tmp_path / "runs" / "plan1-parked"
    plan.park(parked)
    plan.cleanup()  # a parked directory outlives its run
    assert (parked / INIT_STAMP).is_file()

    lines, apply = runner(tmp_path, "run2-bbbbbbbb", {"main.tf.json": "apply"}, reuse=parked)
    _, other = runner(tmp_path, "run3-cccccccc", {"main.tf.json": "apply"}, reuse=parked)
    assert apply.reused and not other.reused  # the second run found nothing to take
    assert not parked.exists()
    assert (apply.workdir / "main.tf.json").read_text() == "apply"
    assert not (apply.workdir / "old.tf.json").exists() and not (apply.workdir / PLAN_FILE).exists()
    apply.init()
    assert any("init skipped" in line for line in lines)
    assert not any(line.startswith("$ terraform init") for line in lines)
    apply.cleanup()
    assert not apply.workdir.exists()


def test_a_directory_initialised_for_another_backend_is_initialised_again(tmp_path):
    _, plan = runner(tmp_path, "run1-aaaaaaaa", {"main.tf.json": "plan"})
    plan.init()
    parked = tmp_path / "runs" / "plan1-parked"
    plan.park(parked)

    lines, apply = runner(
        tmp_path, "run2-bbbbbbbb", {"main.tf.json": "apply"}, reuse=parked, state="b.tfstate"
    )
    assert apply.reused
    apply.init()
    assert not any("init skipped" in line for line in lines)
    assert any(line.startswith("$ terraform init") for line in lines)
