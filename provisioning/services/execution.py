"""The body of the Terraform tasks: claim the run, run Terraform, record the result.

Tasks pass a run id and call ``run_execute``; everything else (rendering, the runner, the log,
outputs into the inventory, change-request follow-ups) happens here, in one place.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from provisioning.iam.spec import SpecError, parse_workspace_spec
from provisioning.models import Run, RunKind, RunStatus, Workspace, WorkspaceStatus
from provisioning.services import runs
from provisioning.terraform.backend import BackendError
from provisioning.terraform.runner import StalePlanError, TerraformError, WorkspaceRunner
from provisioning.terraform.toolchain import ToolchainError
from provisioning.verification.services import verification_after_apply

logger = logging.getLogger(__name__)
POLICY_ATTRIBUTES = {
    "aws_iam_policy": "policy",
    "aws_iam_role": "assume_role_policy",
    "aws_kms_key_policy": "policy",
}


def run_execute(*, run_id: int) -> None:
    if not runs.run_claim(run_id=run_id):
        logger.info("run %s was already claimed; duplicate delivery ignored", run_id)
        return
    run = Run.objects.select_related("workspace").get(pk=run_id)
    runner: WorkspaceRunner | None = None
    with runs.RunLog(run_id) as log:
        try:
            runner = _open(run, log.write)
            _step(run, "init", runner.init)
            {
                RunKind.PLAN: _plan,
                RunKind.DRIFT: _plan,
                RunKind.APPLY: _apply,
                RunKind.DESTROY: _destroy,
            }[RunKind(run.kind)](run, runner)
        except StalePlanError as exc:
            _fail(run, str(exc), exc.exit_code, stale=True)
        except TerraformError as exc:
            _fail(run, str(exc) + ("\n" + exc.output[-1500:] if exc.output else ""), exc.exit_code)
        except (ToolchainError, BackendError, SpecError) as exc:
            _fail(run, f"The run could not start: {exc}", None)
        except SoftTimeLimitExceeded:
            _fail(run, "The run hit CELERY_TASK_SOFT_TIME_LIMIT and was stopped.", None)
        except Exception:
            logger.exception("run %s failed unexpectedly", run_id)
            _fail(run, "The run failed on an internal error; the worker log has the details.", None)
        finally:
            if runner is not None:
                runner.cleanup()


def _open(run: Run, sink) -> WorkspaceRunner:
    from provisioning.terraform.context import open_workspace  # late: reads settings

    spec = parse_workspace_spec(run.spec)
    return open_workspace(
        spec=spec, state_key=run.workspace.state_key, sink=sink, label=f"run{run.pk}"
    )


def _step(run: Run, name: str, call, *args: Any) -> Any:
    runs.run_set_step(run_id=run.pk, step=name)
    return call(*args)


def _plan(run: Run, runner: WorkspaceRunner) -> None:
    result = _step(run, "plan", lambda: runner.plan(destroy=run.destroy_plan))
    summary = {**result.summary, "policy_changes": policy_changes(result.show)}
    runs.run_finish(
        run_id=run.pk,
        status=RunStatus.SUCCEEDED,
        exit_code=2 if result.has_changes else 0,
        plan_file=result.plan_file,
        plan_sha256=result.sha256,
        plan_summary=summary,
        has_changes=result.has_changes,
    )
    if run.kind == RunKind.DRIFT:
        status = WorkspaceStatus.DRIFTED if result.has_changes else WorkspaceStatus.APPLIED
        Workspace.objects.filter(pk=run.workspace_id).update(status=status)
    _after(run)


def _apply(run: Run, runner: WorkspaceRunner) -> None:
    plan = run.plan_run
    if plan is None or plan.plan_file is None:
        raise TerraformError("This apply has no stored plan to apply.")
    plan_bytes = bytes(plan.plan_file)
    if hashlib.sha256(plan_bytes).hexdigest() != plan.plan_sha256:
        raise TerraformError("The stored plan does not match its recorded sha256; refusing it.")
    outputs = _step(run, "apply", runner.apply, plan_bytes)
    _record_outputs(run.workspace_id, outputs, destroyed=plan.destroy_plan)
    verification_after_apply(run=run)  # never raises: a failed proof does not undo the apply
    runs.run_finish(run_id=run.pk, status=RunStatus.SUCCEEDED, exit_code=0, outputs=outputs)
    _after(run)


def _destroy(run: Run, runner: WorkspaceRunner) -> None:
    if run.plan_run is not None:
        return _apply(run, runner)
    _step(run, "destroy", runner.destroy)
    _record_outputs(run.workspace_id, {}, destroyed=True)
    runs.run_finish(run_id=run.pk, status=RunStatus.SUCCEEDED, exit_code=0)
    _after(run)


def _record_outputs(workspace_id: int, outputs: dict[str, Any], *, destroyed: bool) -> None:
    if destroyed:
        Workspace.objects.filter(pk=workspace_id).update(
            status=WorkspaceStatus.DESTROYED,
            role_arn="",
            policy_arn="",
            kms_key_arn="",
            kms_alias="",
            resource_arns={},
            outputs={},
        )
        return
    Workspace.objects.filter(pk=workspace_id).update(
        status=WorkspaceStatus.APPLIED,
        role_arn=outputs.get("role_arn") or "",
        policy_arn=outputs.get("policy_arn") or "",
        kms_key_arn=outputs.get("kms_key_arn") or "",
        kms_alias=outputs.get("kms_alias") or "",
        resource_arns=outputs.get("resource_arns") or {},
        outputs={k: v for k, v in outputs.items() if not k.endswith("_json")},
    )


def _fail(run: Run, message: str, exit_code: int | None, *, stale: bool = False) -> None:
    if runs.run_finish(run_id=run.pk, status=RunStatus.FAILED, error=message, exit_code=exit_code):
        if run.kind in (RunKind.APPLY, RunKind.DESTROY):
            Workspace.objects.filter(pk=run.workspace_id).update(status=WorkspaceStatus.FAILED)
        _after(run, stale=stale)


def _after(run: Run, *, stale: bool = False) -> None:
    """Let the change request that asked for this run move on."""
    if run.change_request_id is None:
        return
    from provisioning.services.changes import change_request_run_finished

    change_request_run_finished(change_request_id=run.change_request_id, stale=stale)


def policy_changes(show: dict[str, Any]) -> list[dict[str, Any]]:
    """Every IAM/KMS policy the plan creates or changes, before and after, for the reviewer."""
    changes = []
    for change in show.get("resource_changes", []):
        attribute = POLICY_ATTRIBUTES.get(change.get("type", ""))
        body = change["change"]
        if attribute is None or body["actions"] in (["no-op"], ["read"]):
            continue
        before = (body.get("before") or {}).get(attribute)
        after = (body.get("after") or {}).get(attribute)
        unknown = bool((body.get("after_unknown") or {}).get(attribute))
        changes.append(
            {
                "address": change["address"],
                "actions": body["actions"],
                "before": _as_json(before),
                "after": None if unknown else _as_json(after),
                "after_known": not unknown,
            }
        )
    return changes


def _as_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
