"""Run Terraform for one workspace in a fresh working directory, through python-terraform.

python-terraform's ``init``/``plan``/``apply``/``destroy``/``output`` methods build the argument
lists; ``_StreamingTerraform.cmd`` replaces only how the process runs, because the stock one hands
Terraform the worker's whole environment (database URL, secret key, broker credentials), buffers
all output until the end, has no timeout, and ties Terraform's life to the worker's. Here the
child gets a small, explicit environment and starts through the launcher (``process.py``) in a
session of its own, writing to files the worker tails line by line into the caller's sink (with
secrets redacted); a worker that dies leaves Terraform running for another worker to adopt, and a
run that outlives its timeout is stopped with SIGTERM first so Terraform can release its lock.

``process.py`` and ``toolchain.terraform_version`` are the only places that start processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_terraform import IsFlagged, IsNotFlagged, Terraform

from provisioning.redaction import redact_text
from provisioning.terraform import process
from provisioning.terraform.backend import BackendConfig
from provisioning.terraform.toolchain import terraform_env

LogSink = Callable[[str], None]
PLAN_FILE = "tfplan"
# Written after a successful init: what it was done for (``_init_stamp``).
INIT_STAMP = ".irsa-init"
# Long enough to ride out another workspace's brief hold of the pg backend's creation lock; a
# workspace truly locked by another run still fails (the database allows one active run each).
DEFAULT_LOCK_TIMEOUT = "10s"


class TerraformError(RuntimeError):
    """Terraform exited with an error; ``output`` holds the tail of what it printed."""

    def __init__(self, message: str, *, exit_code: int | None = None, output: str = ""):
        super().__init__(message)
        self.exit_code = exit_code
        self.output = output


class StalePlanError(TerraformError):
    """The saved plan no longer matches the state: it must be planned and reviewed again."""


class StateLockedError(TerraformError):
    """Another run holds the workspace's state lock; it is reported, never forced."""


class TerraformTimeout(TerraformError):
    pass


@dataclass(frozen=True)
class Toolchain:
    binary: Path
    cli_config: Path
    version: str


@dataclass
class PlanResult:
    has_changes: bool
    plan_file: bytes
    sha256: str
    summary: dict[str, list[str]]
    show: dict[str, Any] = field(repr=False)


def redactor(secrets: list[str], sink: LogSink) -> LogSink:
    """A sink that masks these secret values (and backend configuration and server paths, as
    ``provisioning.redaction`` does everywhere) before passing the line on."""
    values = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def write(line: str) -> None:
        sink(redact_text(line, extra_secrets=values, secrets=[]))

    return write


class _StreamingTerraform(Terraform):
    def __init__(
        self,
        *,
        binary: Path,
        working_dir: Path,
        env: Mapping[str, str],
        sink: LogSink,
        timeout: float,
    ):
        super().__init__(
            working_dir=str(working_dir), terraform_bin_path=str(binary), is_env_vars_included=False
        )
        self._env = dict(env)
        self._sink = sink
        self._timeout = timeout
        # Called with each long command (plan/apply/destroy/import) once it started, so the run
        # can record where Terraform runs.
        self.on_start: Callable[[process.Launched], None] | None = None
        # Set by an adopter: the next command is not started but followed where it runs.
        self.adopting: process.Launched | None = None

    def cmd(self, cmd: str, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
        echo_stdout = kwargs.pop("echo_stdout", True)
        stdout_sink = kwargs.pop("stdout_sink", None) or self._sink
        for ignored in ("capture_output", "raise_on_error", "synchronous"):
            kwargs.pop(ignored, None)
        argv = self.generate_cmd_string(cmd, *args, **kwargs)
        try:
            launched = self._launch(cmd, argv)
            return _follow(
                launched,
                sink=self._sink,
                stdout_sink=stdout_sink if echo_stdout else None,
                timeout=self._timeout,
            )
        finally:
            self.temp_var_files.clean_up()

    def _launch(self, cmd: str, argv: list[str]) -> process.Launched:
        adopted, self.adopting = self.adopting, None
        if adopted is not None:
            self._sink(
                f"(adopted terraform {adopted.command} still running as pid {adopted.pid} or "
                "finished; its whole output follows, from its start)"
            )
            return adopted
        self._sink(f"$ terraform {' '.join(argv[1:])}")
        try:
            launched = process.start(
                argv, workdir=Path(self.working_dir), env=self._env, command=cmd
            )
        except OSError as exc:
            raise TerraformError(
                f"Terraform could not start ({argv[0]}): {exc.strerror}. "
                "Check the TERRAFORM_BIN setting."
            ) from exc
        if self.on_start is not None and cmd in process.LONG_COMMANDS:
            self.on_start(launched)
        return launched


def _follow(
    launched: process.Launched, *, sink: LogSink, stdout_sink: LogSink | None, timeout: float
) -> tuple[int, str, str]:
    try:
        rc, out, err = process.follow(launched, sink=sink, stdout_sink=stdout_sink, timeout=timeout)
    except process.FollowTimeout as exc:
        raise TerraformTimeout(
            f"terraform {launched.command} did not finish within {timeout:g} s and was stopped",
            output=str(exc)[-4000:],
        ) from None
    except process.TerraformGone as exc:
        raise TerraformError(str(exc)) from None
    except Exception:
        # The task's soft time limit, say: the run ends, so must the Terraform it started (an
        # adopted one is left alone: its own starter is gone, and stopping it is for a human).
        if launched.process is not None:
            process.stop(launched)
        raise
    if rc == 127 and "could not start" in err:
        raise TerraformError(f"{err.strip()}. Check the TERRAFORM_BIN setting.", exit_code=rc)
    return rc, out, err


class JsonUi:
    """Terraform's machine-readable UI (``-json``: one JSON object per line), as plain log lines.

    Each message's ``@message`` is the line Terraform would print; a diagnostic adds its detail;
    the ``outputs`` message is kept (name -> value) and listed the way the human UI lists it.
    """

    def __init__(self, sink: LogSink):
        self._sink = sink
        self._lines: list[str] = []
        self.outputs: dict[str, Any] | None = None

    def write(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self._emit(raw)  # not JSON: pass it on as it came
            return
        if message.get("type") == "outputs":
            values = message.get("outputs") or {}
            self.outputs = {name: body.get("value") for name, body in values.items()}
            self._emit("Outputs:" if values else "No outputs.")
            for name, body in sorted(values.items()):
                value = json.dumps(body.get("value"))
                self._emit(f"  {name} = {'(sensitive value)' if body.get('sensitive') else value}")
            return
        self._emit(str(message.get("@message", "")))
        diagnostic = message.get("diagnostic") or {}
        if diagnostic.get("detail"):
            self._emit(diagnostic["detail"])

    def _emit(self, line: str) -> None:
        self._lines.append(line)
        self._sink(line)

    def text(self) -> str:
        return "\n".join(self._lines)


class WorkspaceRunner:
    """One working directory: the rendered files, ``modules`` linked to the project's modules."""

    def __init__(
        self,
        *,
        toolchain: Toolchain,
        workdir: Path,
        files: Mapping[str, str],
        modules_dir: Path,
        backend: BackendConfig,
        extra_env: Mapping[str, str],
        sink: LogSink,
        timeout: float = 3600,
        lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
        prepare_state: Callable[[], bool] | None = None,
        existing: bool = False,
        reuse: Path | None = None,
    ):
        """``existing`` reopens a working directory a (dead) worker left, to adopt its Terraform.

        ``prepare_state`` runs after ``init``, answering True when it created the state.

        The pg backend needs it: it locks a workspace by its state row's id, and one with no row
        yet under a single database-wide "creation" lock held for the whole operation, which
        would serialize every first plan in the portal and fail concurrent ones. A new
        workspace's empty row is therefore created right after ``init`` (the backend's table
        exists by then), outside Terraform: a ``state push`` would cost a CLI call, and every
        Terraform command spends about half a second re-hashing the provider package first.

        ``reuse`` names a parked plan directory (``park``) to take over for this run: it is
        moved here atomically (so only one run can take it), its files are rendered afresh, and
        ``init`` is skipped when it was initialised for the same Terraform and backend. Missing
        (another host, swept, already taken) means a fresh directory, as without it.
        """
        if backend.kind == "pg" and prepare_state is None:
            raise ValueError("the pg backend needs prepare_state: see WorkspaceRunner.__init__")
        self.workdir = workdir
        self._prepare_state = prepare_state
        self.backend = backend
        self.version = toolchain.version
        self.lock_timeout = lock_timeout
        self.parked = False
        self.reused = not existing and reuse is not None and _take_parked(reuse, workdir)
        self._init_stamp = _init_stamp(toolchain, backend)
        # With a lock error, Terraform prints the Lock Info the backend returns: the S3 and local
        # backends read the holder's; the pg backend (advisory locks) only has the refused
        # attempt's own, which names this run, not the holder.
        self._lock_holder_printed = backend.kind != "pg"
        if not existing:
            if not self.reused:
                workdir.mkdir(parents=True, exist_ok=False)
                (workdir / "modules").symlink_to(modules_dir.resolve(), target_is_directory=True)
            if self.reused:  # the plan run's rendering goes, all of it: this run renders its own
                keep = {*files, ".terraform.lock.hcl", INIT_STAMP}
                for path in workdir.iterdir():
                    if path.is_file() and not path.is_symlink() and path.name not in keep:
                        path.unlink()
            for name, text in files.items():
                (workdir / name).write_text(text)
        env = terraform_env(
            cli_config=toolchain.cli_config,
            base=os.environ,
            extra={
                **extra_env,
                **backend.secret_env,
                # The plugin cache only holds providers from our own mirror or the registry, so
                # reusing it without a pre-existing lock file is safe, and saves a 600 MB copy.
                "TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE": "true",
            },
        )
        secrets = [*backend.secrets(), *(v for k, v in extra_env.items() if _is_secret_name(k))]
        self.tf = _StreamingTerraform(
            binary=toolchain.binary,
            working_dir=workdir,
            env=env,
            sink=redactor(secrets, sink),
            timeout=timeout,
        )

    def init(self) -> None:
        stamp = self.workdir / INIT_STAMP
        if self.reused and stamp.is_file() and stamp.read_text() == self._init_stamp:
            self.tf._sink(
                "(the plan run's working directory, initialised for this Terraform and backend, "
                "is reused: init skipped)"
            )
            return
        rc, out, err = self.tf.init(
            backend_config=dict(self.backend.options), var=None, input=False, reconfigure=IsFlagged
        )
        _raise_for(rc, "init", out + err)
        stamp.write_text(self._init_stamp)
        if self._prepare_state is not None and self._prepare_state():
            self.tf._sink("(new workspace: an empty state row was created for it)")

    def plan(self, *, destroy: bool = False) -> PlanResult:
        rc, out, err = self.tf.plan(
            out=PLAN_FILE,
            var=None,
            input=False,
            lock_timeout=self.lock_timeout,
            destroy=IsFlagged if destroy else IsNotFlagged,
        )
        if rc not in (0, 2):
            _raise_for(rc, "plan", out + err, holder=self._lock_holder_printed)
        plan_bytes = (self.workdir / PLAN_FILE).read_bytes()
        show = self.show(PLAN_FILE)
        return PlanResult(
            has_changes=rc == 2,
            plan_file=plan_bytes,
            sha256=hashlib.sha256(plan_bytes).hexdigest(),
            summary=summarize_plan(show),
            show=show,
        )

    def show(self, plan_file: str | None = None) -> dict[str, Any]:
        """A saved plan as JSON, or without one the current state (values, outputs)."""
        args = [plan_file] if plan_file else []
        rc, out, err = self.tf.cmd(
            "show", *args, json=IsFlagged, no_color=IsFlagged, echo_stdout=False
        )
        _raise_for(rc, "show", err)
        return json.loads(out or "{}")

    def adopt(self, launched: process.Launched) -> None:
        """The next command follows this already running (or finished) one instead of starting."""
        self.tf.adopting = launched

    def import_resource(self, *, address: str, resource_id: str) -> None:
        """``terraform import <address> <id>``: bring something AWS holds under this state."""
        rc, out, err = self.tf.cmd(
            "import", address, resource_id, var=None, input=False, lock_timeout=self.lock_timeout
        )
        _raise_for(rc, "import", out + err, holder=self._lock_holder_printed)

    def apply(self, plan_file: bytes) -> dict[str, Any]:
        """Apply exactly this saved plan and return the outputs it leaves; StalePlanError when
        the state moved on since.

        ``-json`` makes Terraform report as it goes in its machine-readable UI, rendered to
        plain lines for the log; its closing ``outputs`` message carries the same values
        ``output -json`` would print, without a second Terraform process.
        """
        if self.tf.adopting is None:
            (self.workdir / PLAN_FILE).write_bytes(plan_file)
        ui = JsonUi(self.tf._sink)
        rc, _, err = self.tf.apply(
            PLAN_FILE,
            var=None,
            input=False,
            lock_timeout=self.lock_timeout,
            json=IsFlagged,
            stdout_sink=ui.write,
        )
        _raise_for(rc, "apply", ui.text() + err, holder=self._lock_holder_printed)
        if ui.outputs is None:
            raise TerraformError("terraform apply finished without reporting its outputs.")
        return ui.outputs

    def destroy(self) -> None:
        rc, out, err = self.tf.destroy(
            force=IsNotFlagged,
            auto_approve=IsFlagged,
            var=None,
            input=False,
            lock_timeout=self.lock_timeout,
        )
        _raise_for(rc, "destroy", out + err, holder=self._lock_holder_printed)

    def outputs(self) -> dict[str, Any]:
        rc, out, err = self.tf.cmd("output", json=IsFlagged, no_color=IsFlagged, echo_stdout=False)
        _raise_for(rc, "output", err)
        return {name: body.get("value") for name, body in json.loads(out or "{}").items()}

    def park(self, target: Path) -> None:
        """Keep this initialised directory for the apply of its plan (``reuse``), saving that
        run an ``init``. Best effort: a directory that cannot be moved is removed as usual."""
        try:
            os.rename(self.workdir, target)
        except OSError:
            return
        self.workdir, self.parked = target, True

    def cleanup(self) -> None:
        if not self.parked:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _take_parked(parked: Path, workdir: Path) -> bool:
    """Move a parked directory to be this run's: rename is atomic, so of two runs reaching for
    the same one only one gets it. The previous commands' files go: an adopter follows the last
    command in ``.io``, which must be this run's."""
    try:
        os.rename(parked, workdir)
    except OSError:
        return False
    shutil.rmtree(workdir / process.IO_DIR, ignore_errors=True)
    (workdir / PLAN_FILE).unlink(missing_ok=True)  # the apply writes the approved bytes
    return True


def _init_stamp(toolchain: Toolchain, backend: BackendConfig) -> str:
    """What an ``init`` depends on: the Terraform binary and version, the CLI config and the
    backend settings (hashed: the options may hold a connection string)."""
    body = json.dumps(
        {
            "binary": str(toolchain.binary),
            "version": toolchain.version,
            "cli_config": str(toolchain.cli_config),
            "backend": backend.kind,
            "options": sorted(dict(backend.options).items()),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _is_secret_name(name: str) -> bool:
    return any(word in name.upper() for word in ("SECRET", "TOKEN", "PASSWORD", "CONN_STR"))


def _raise_for(rc: int, step: str, output: str, *, holder: bool = True) -> None:
    """``holder``: the output's Lock Info (if any) describes the lock's holder."""
    if rc == 0:
        return
    tail = output[-4000:]
    if "Saved plan is stale" in output:
        raise StalePlanError(
            f"terraform {step}: the saved plan is stale (the state changed "
            "after it was made); plan again and review it.",
            exit_code=rc,
            output=tail,
        )
    if "Error acquiring the state lock" in output:
        release = (
            " If no run of this workspace is running any more, a run that died left it: an "
            "admin can release it on the workspace (Django admin, 'Release the state lock')."
        )
        raise StateLockedError(
            f"terraform {step}: the workspace state is locked by "
            f"{_lock_holder(output) if holder else 'another run'}; the lock was not forced."
            + (release if holder else ""),
            exit_code=rc,
            output=tail,
        )
    raise TerraformError(
        f"terraform {step} failed: {process.describe_exit(rc)}", exit_code=rc, output=tail
    )


def lock_info(output: str) -> dict[str, str]:
    """The ``Lock Info:`` block Terraform prints with a lock error (ID, Path, Operation, Who,
    Version, Created), as a dict; empty when the backend printed none."""
    _, found, block = output.partition("Lock Info:")
    info: dict[str, str] = {}
    for line in block.splitlines()[1:] if found else []:
        key, colon, value = line.strip().partition(":")
        if not colon or not key.isalpha():
            break
        info[key] = value.strip()
    return info


def _lock_holder(output: str) -> str:
    info = lock_info(output)
    if not info.get("ID"):
        return "another run"
    holder = f"lock {info['ID']}"
    details = [
        f"{name} {info[key]}"
        for key, name in (("Operation", "operation"), ("Who", "held by"), ("Created", "since"))
        if info.get(key)
    ]
    return holder + (f" ({', '.join(details)})" if details else "")


def summarize_plan(show: Mapping[str, Any]) -> dict[str, list[str]]:
    """Resource addresses by what the plan does to them."""
    summary: dict[str, list[str]] = {"add": [], "change": [], "replace": [], "destroy": []}
    for change in show.get("resource_changes", []):
        actions = change["change"]["actions"]
        bucket = {("create",): "add", ("update",): "change", ("delete",): "destroy"}.get(
            tuple(actions)
        )
        if bucket is None and set(actions) == {"create", "delete"}:
            bucket = "replace"
        if bucket is not None:
            summary[bucket].append(change["address"])
    return {k: sorted(v) for k, v in summary.items()}
