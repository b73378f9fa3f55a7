"""The body of the Terraform tasks: claim the run, run Terraform, record the result.

Tasks pass a run id and call ``run_execute``; everything else (rendering, the runner, the log,
outputs into the inventory, change-request follow-ups) happens here, in one place. A run whose
worker died while its Terraform ran on is finished by ``run_adopt`` through the same steps, and
every unsuccessful end (failed, interrupted) goes through ``run_end_unsuccessfully``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction

from provisioning.aws import AccountSession, session_for_cluster
from provisioning.iam.spec import SpecError, parse_workspace_spec
from provisioning.models import (
    ChangeRequest,
    Cluster,
    Decision,
    Review,
    Run,
    RunKind,
    RunStatus,
    Workspace,
    WorkspaceStatus,
)
from provisioning.services import runs
from provisioning.services.audit import audit_record
from provisioning.services.keys import PENDING, key_pending_deletion
from provisioning.services.names import physical_names_keep_only
from provisioning.services.preflight import (
    data_at_risk,
    data_deletions,
    preflight_taken_names,
    protected_refusals,
)
from provisioning.terraform.backend import BackendError
from provisioning.terraform.process import Launched
from provisioning.terraform.runner import (
    LogSink,
    StalePlanError,
    TerraformError,
    WorkspaceRunner,
)
from provisioning.terraform.toolchain import ToolchainError
from provisioning.verification.services import verification_after_apply

logger = logging.getLogger(__name__)
# The services the plan's pre-flight and data-at-risk checks (provisioning.services.preflight) and
# the verification after an apply (provisioning.verification) call in the cluster's account.
ACCOUNT_SERVICES = ("s3", "dynamodb", "iam", "kms")
POLICY_ATTRIBUTES = {
    "aws_iam_policy": "policy",
    "aws_iam_role": "assume_role_policy",
    "aws_kms_key_policy": "policy",
}


@dataclass
class _Job:
    """One run being executed (or adopted): its row, its log and, once open, its runner."""

    run: Run
    log: runs.RunLog
    runner: WorkspaceRunner | None = None


def run_execute(*, run_id: int) -> None:
    if not runs.run_claim(run_id=run_id):
        logger.info("run %s was already claimed; duplicate delivery ignored", run_id)
        return
    run = Run.objects.select_related("workspace__cluster").get(pk=run_id)
    with runs.RunLog(run_id) as log:
        job = _Job(run=run, log=log)
        _guarded(job, lambda: _start(job))


def run_adopt(*, run_id: int, launched: Launched) -> None:
    """Finish a run whose worker died while its Terraform ran on: follow the command that
    worker started (from the start of its output) and record the result as ``run_execute``
    would. The caller has claimed the adoption (``runs.run_claim_adoption``)."""
    run = Run.objects.select_related("workspace__cluster").get(pk=run_id)
    with runs.RunLog(run_id) as log:
        job = _Job(run=run, log=log)

        def body() -> None:
            job.runner = _open(run, log.write, workdir=Path(run.workdir))
            job.runner.adopt(launched)
            _BODIES[RunKind(run.kind)](job)

        _guarded(job, body)


def _start(job: _Job) -> None:
    run = job.run
    job.runner = _open(run, job.log.write, reuse=_parked_plan(run))
    workdir = str(job.runner.workdir)
    job.runner.tf.on_start = lambda launched: runs.run_record_process(
        run_id=run.pk, pid=launched.pid, workdir=workdir
    )
    _step(run, "init", job.runner.init)
    _BODIES[RunKind(run.kind)](job)


def _guarded(job: _Job, body: Callable[[], None]) -> None:
    try:
        body()
    except StalePlanError as exc:
        _fail(job, str(exc), exc.exit_code, stale=True)
    except TerraformError as exc:
        if _throttled_drift(job, exc):
            return
        _fail(job, str(exc) + ("\n" + exc.output[-1500:] if exc.output else ""), exc.exit_code)
    except (ToolchainError, BackendError, SpecError) as exc:
        _fail(job, f"The run could not start: {exc}", None)
    except SoftTimeLimitExceeded:
        _fail(job, "The run hit CELERY_TASK_SOFT_TIME_LIMIT and was stopped.", None)
    except Exception:
        logger.exception("run %s failed unexpectedly", job.run.pk)
        _fail(job, "The run failed on an internal error; the worker log has the details.", None)
    finally:
        if job.runner is not None:
            job.runner.cleanup()


def _parked_plan(run: Run) -> Path | None:
    """The directory its plan run parked, for an apply of a saved plan (there may be none)."""
    from provisioning.terraform.context import parked_dir  # late: reads settings

    return parked_dir(run.plan_run_id) if run.plan_run_id is not None else None


def _open(
    run: Run, sink: LogSink, *, workdir: Path | None = None, reuse: Path | None = None
) -> WorkspaceRunner:
    from provisioning.terraform.context import open_workspace  # late: reads settings

    spec = parse_workspace_spec(run.spec)
    return open_workspace(
        spec=spec,
        state_key=run.workspace.state_key,
        sink=sink,
        label=f"run{run.pk}",
        workdir=workdir,
        run_id=run.pk,
        # A drift check gives up on throttling quickly; the scheduler backs off the account.
        aws_max_retries=settings.DRIFT_AWS_MAX_RETRIES if run.kind == RunKind.DRIFT else None,
        reuse=reuse,
    )


def _step(run: Run, name: str, call, *args: Any) -> Any:
    runs.run_set_step(run_id=run.pk, step=name)
    return call(*args)


def _finish(job: _Job, *, then: Callable[[], None] | None = None, **fields: Any) -> bool:
    """Flush the log first: a reader who sees the run final sees its whole log; and its change
    request moved on (see ``_end_and_move_on``)."""
    job.log.flush()
    return _end_and_move_on(
        job.run, lambda: runs.run_finish(run_id=job.run.pk, **fields), then=then
    )


def _end_and_move_on(
    run: Run,
    finish: Callable[[], bool],
    *,
    then: Callable[[], None] | None = None,
    stale: bool = False,
) -> bool:
    """A run's end and its change request's next step commit together, so a client that sees
    the run final also sees the request planned, applied or failed (never "submitted" a moment
    longer). The request's row is locked first: the ends of one request's runs queue behind it,
    and the last to end reads all the others final. A follow-up that fails rolls back alone;
    the run stays ended (``finish`` returns False when it had ended already)."""
    with transaction.atomic():
        if run.change_request_id is not None:
            locked = ChangeRequest.objects.select_for_update().filter(pk=run.change_request_id)
            list(locked.values_list("pk", flat=True))
        if not finish():
            return False
        if then is not None:
            then()
        try:
            with transaction.atomic():
                _after(run, stale=stale)
        except Exception:  # the run's end must not be lost with it
            logger.exception(
                "change request %s did not move on after run %s", run.change_request_id, run.pk
            )
    return True


def _plan(job: _Job) -> None:
    run, runner = job.run, job.runner
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The account's session and clients are made while Terraform plans (a second or so of
        # Python work on a plan + apply otherwise spent after the plan, on the run's clock).
        planning = run.kind == RunKind.PLAN
        aws = (
            pool.submit(
                _account_with_clients, run.workspace.cluster, purpose="preflight", run_id=run.pk
            )
            if planning
            else None
        )
        result = _step(run, "plan", lambda: runner.plan(destroy=run.destroy_plan))
    account = aws.result if aws is not None else lambda: _account(run, "preflight")
    if not run.destroy_plan:
        _preflight(run, result.show, account)
    summary = {**result.summary, "policy_changes": policy_changes(result.show)}
    # Any plan that deletes or replaces a table or bucket (a decommission, a removed resource, a
    # changed key) says what they hold; the request then waits for the typed confirmation. A drift
    # check is never applied: it only reports.
    if run.kind == RunKind.PLAN and (run.destroy_plan or data_deletions(result.show)):
        summary["data_at_risk"] = _step(
            run,
            "data at risk",
            lambda: data_at_risk(show=result.show, aws=account()),
        )
        if refusals := protected_refusals(summary["data_at_risk"]):
            raise TerraformError("Refused: " + " ".join(refusals) + " Nothing was destroyed.")
    if run.kind == RunKind.PLAN and result.has_changes:
        _park(job)

    def drift_status() -> None:
        if run.kind == RunKind.DRIFT:
            status = WorkspaceStatus.DRIFTED if result.has_changes else WorkspaceStatus.APPLIED
            Workspace.objects.filter(pk=run.workspace_id).update(status=status)

    _finish(
        job,
        then=drift_status,
        status=RunStatus.SUCCEEDED,
        exit_code=2 if result.has_changes else 0,
        # A drift check is never applied: its hash and summary are the record, not ~20 KB of
        # plan file per check (the largest part of a drift run's row; docs/deploy.md, capacity).
        plan_file=result.plan_file if run.kind == RunKind.PLAN else None,
        plan_sha256=result.sha256,
        plan_summary=summary,
        has_changes=result.has_changes,
    )


def _park(job: _Job) -> None:
    """Before the run is final (an apply may be queued the moment it is): the apply of this
    plan takes the initialised directory over and skips its ``init``."""
    from provisioning.terraform.context import parked_dir  # late: reads settings

    job.runner.park(parked_dir(job.run.pk))


def _preflight(run: Run, show: dict[str, Any], account: Callable[[], AccountSession]) -> None:
    """A plan that would create a name AWS already holds fails here, before any apply."""
    try:
        taken = _step(
            run,
            "preflight",
            lambda: preflight_taken_names(show=show, aws=account()),
        )
    except (BotoCoreError, ClientError) as exc:
        raise TerraformError(
            f"Pre-flight: AWS could not be asked whether the plan's names are free ({exc}). "
            "Nothing was created; plan again once AWS answers."
        ) from None
    if taken:
        raise TerraformError(
            "Pre-flight: " + " ".join(taken) + " Nothing was created; the plan was discarded."
        )


def _account_with_clients(cluster: Cluster, *, purpose: str, run_id: int | None) -> AccountSession:
    """A session for the pre-flight (and data at risk) or the verification after an apply, with
    the clients they ask for. Runs in a thread, so it is handed the cluster row, read by the
    caller: a query here would open a database connection that the thread leaves open."""
    aws = session_for_cluster(cluster, purpose=purpose, run_id=run_id)
    for service in ACCOUNT_SERVICES:
        aws.client(service)
    return aws


def _account(run: Run, purpose: str) -> AccountSession:
    """The run's cluster's account, through its deployment role when it names one."""
    return session_for_cluster(run.workspace.cluster, purpose=purpose, run_id=run.pk)


def _apply(job: _Job) -> None:
    run, runner = job.run, job.runner
    plan = run.plan_run
    if plan is None or plan.plan_file is None:
        raise TerraformError("This apply has no stored plan to apply.")
    plan_bytes = bytes(plan.plan_file)
    _check_plan_approved(run, plan, hashlib.sha256(plan_bytes).hexdigest())
    verifies = settings.VERIFY_AFTER_APPLY and not plan.destroy_plan
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The verification's session and clients are made while Terraform applies.
        aws = (
            pool.submit(_account_with_clients, run.workspace.cluster, purpose="verify", run_id=None)
            if verifies
            else None
        )
        outputs = _step(run, "apply", runner.apply, plan_bytes)
    _record_outputs(run.workspace_id, outputs, destroyed=plan.destroy_plan)
    physical_names_keep_only(
        workspace_id=run.workspace_id,
        spec=None if plan.destroy_plan else parse_workspace_spec(run.spec),
    )
    # Never raises: a failed proof does not undo the apply (nor does a session that failed).
    verification_after_apply(run=run, aws=aws.result if aws is not None else None)
    _finish(job, status=RunStatus.SUCCEEDED, exit_code=0, outputs=outputs)


def _check_plan_approved(run: Run, plan: Run, sha256: str) -> None:
    """The plan file about to be applied must be byte for byte the one the approving review
    recorded: a plan row edited after the approval (file or hash) is refused, not applied.

    A run without a change request is an operator's run started through the services (no page,
    API or admin action starts one); its plan is checked against the plan row's own hash."""
    if run.change_request_id is None:
        if sha256 != plan.plan_sha256:
            raise TerraformError("The stored plan does not match its recorded sha256; refusing it.")
        return
    review = (
        Review.objects.filter(change_request_id=run.change_request_id, decision=Decision.APPROVE)
        .order_by("-pk")
        .first()
    )
    approved = (review.plan_hashes or {}).get(str(plan.pk)) if review is not None else None
    if approved is None:
        raise TerraformError(
            f"Plan run #{plan.pk} was not approved by a review of change request "
            f"#{run.change_request_id}; refusing to apply it."
        )
    if sha256 != approved:
        raise TerraformError(
            f"The plan file of run #{plan.pk} (sha256 {sha256[:12]}…) is not the plan the review "
            f"approved (sha256 {approved[:12]}…); refusing to apply it. Plan again and review it."
        )


def _destroy(job: _Job) -> None:
    if job.run.plan_run is not None:
        return _apply(job)
    _step(job.run, "destroy", job.runner.destroy)
    _record_outputs(job.run.workspace_id, {}, destroyed=True)
    physical_names_keep_only(workspace_id=job.run.workspace_id, spec=None)
    _finish(job, status=RunStatus.SUCCEEDED, exit_code=0)


_BODIES: dict[RunKind, Callable[[_Job], None]] = {
    RunKind.PLAN: _plan,
    RunKind.DRIFT: _plan,
    RunKind.APPLY: _apply,
    RunKind.DESTROY: _destroy,
}


def adoptable_command(run: Run) -> str:
    """The long command a run of this kind runs, which an adopter may follow."""
    if run.kind in (RunKind.PLAN, RunKind.DRIFT):
        return "plan"
    if run.kind == RunKind.DESTROY and run.plan_run_id is None:
        return "destroy"
    return "apply"


def _record_outputs(workspace_id: int, outputs: dict[str, Any], *, destroyed: bool) -> None:
    if destroyed:
        workspace = Workspace.objects.select_related("cluster").get(pk=workspace_id)
        kept = {}
        if workspace.kms_key_arn:  # scheduled for deletion, not gone: say until when
            kept[PENDING] = key_pending_deletion(
                key_arn=workspace.kms_key_arn,
                aws=session_for_cluster(workspace.cluster, purpose="reconcile"),
            )
        Workspace.objects.filter(pk=workspace_id).update(
            status=WorkspaceStatus.DESTROYED,
            role_arn="",
            policy_arn="",
            kms_key_arn="",
            kms_alias="",
            resource_arns={},
            outputs=kept,
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


def _throttled_drift(job: _Job, exc: TerraformError) -> bool:
    """A drift check that AWS throttled ends cancelled with a message saying so, not failed:
    nothing is wrong with the workspace, and the scheduler pauses the account's checks."""
    from provisioning.services.drift import throttle_code, throttled_message

    code = throttle_code(f"{exc}\n{exc.output}")
    if job.run.kind != RunKind.DRIFT or code is None:
        return False
    job.log.flush()
    account = Workspace.objects.filter(pk=job.run.workspace_id).values_list(
        "cluster__account_id", flat=True
    )
    message = throttled_message(code=code, account_id=account.first() or "?")
    return run_end_unsuccessfully(
        run=job.run, status=RunStatus.CANCELLED, message=message, exit_code=exc.exit_code
    )


def _fail(job: _Job, message: str, exit_code: int | None, *, stale: bool = False) -> None:
    job.log.flush()
    run_end_unsuccessfully(
        run=job.run, status=RunStatus.FAILED, message=message, exit_code=exit_code, stale=stale
    )


def run_end_unsuccessfully(
    *, run: Run, status: str, message: str, exit_code: int | None = None, stale: bool = False
) -> bool:
    """A failed or interrupted run ends the same way everywhere: the run records why, an apply's
    workspace is marked failed and reconciled against AWS, and the change request moves on
    (applying → failed, submitted → draft) with an audit event carrying the message."""
    changes_aws = run.kind in (RunKind.APPLY, RunKind.DESTROY)

    def record() -> None:
        if changes_aws:
            Workspace.objects.filter(pk=run.workspace_id).update(status=WorkspaceStatus.FAILED)
        if run.change_request_id is not None:
            audit_record(
                actor=None,
                action=f"change_request.run_{status}",
                obj=run.change_request,
                data={"run": run.pk, "kind": run.kind, "message": message[:1000]},
            )

    ended = _end_and_move_on(
        run,
        lambda: runs.run_finish(run_id=run.pk, status=status, error=message, exit_code=exit_code),
        then=record,
        stale=stale,
    )
    if not ended:
        return False
    if changes_aws and not stale:
        runs.dispatch_reconciliation(run.workspace_id)
    return True


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
