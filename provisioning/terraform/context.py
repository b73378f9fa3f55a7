"""Bind the runner to Django settings: which Terraform, which backend, which AWS, where to work.

The one place in ``provisioning/terraform`` that reads settings; everything else takes arguments.
"""

from __future__ import annotations

import os
import uuid
from functools import lru_cache
from pathlib import Path

import psycopg
import psycopg.sql
from django.conf import settings
from django.db import connection

from portal.startup import aws_target_problem
from provisioning.aws import DeploymentRole, deployment_role
from provisioning.iam.spec import WorkspaceSpec
from provisioning.models import Cluster
from provisioning.terraform.backend import (
    BackendConfig,
    BackendError,
    backend_config,
    empty_state,
    postgres_conn_str,
    resolve_backend_kind,
    s3_endpoint_env,
)
from provisioning.terraform.render import render_workspace
from provisioning.terraform.runner import LogSink, Toolchain, WorkspaceRunner
from provisioning.terraform.toolchain import (
    check_provider_available,
    find_terraform,
    terraform_version,
    write_cli_config,
)

MODULES_DIR = Path(__file__).resolve().parents[2] / "terraform" / "modules"
# The AWS credential sources Terraform may use; nothing else of the worker's AWS_* leaks through.
AWS_ENV_PASSTHROUGH = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CA_BUNDLE",
)


def work_root() -> Path:
    return Path(settings.TERRAFORM_WORK_DIR)


@lru_cache(maxsize=4)
def _toolchain(binary_setting: str, mirror_setting: str, root: str) -> Toolchain:
    binary = find_terraform(binary_setting or None)
    mirror = Path(mirror_setting) if mirror_setting else None
    check_provider_available(mirror)
    cli_config = write_cli_config(
        Path(root), plugin_mirror=mirror, plugin_cache_dir=Path(root) / "plugin-cache"
    )
    return Toolchain(binary=binary, cli_config=cli_config, version=terraform_version(binary))


def toolchain() -> Toolchain:
    """Resolved once per process (and again if the settings change, as in tests)."""
    return _toolchain(settings.TERRAFORM_BIN, settings.TERRAFORM_PLUGIN_MIRROR, str(work_root()))


def backend_kind() -> str:
    return resolve_backend_kind(settings.TERRAFORM_BACKEND, database_vendor=connection.vendor)


def workspace_backend(state_key: str, terraform_version: str = "") -> BackendConfig:
    return backend_config(
        kind=backend_kind(),
        state_key=state_key,
        state_dir=work_root() / "state",
        database=connection.settings_dict,
        s3_bucket=settings.TERRAFORM_STATE_BUCKET,
        s3_lock_table=settings.TERRAFORM_LOCK_TABLE,
        region=settings.AWS_REGION,
        endpoint_url=settings.AWS_ENDPOINT_URL,
        terraform_version=terraform_version,
    )


def render_files(
    spec: WorkspaceSpec,
    *,
    purpose: str = "run",
    run_id: int | None = None,
    aws_max_retries: int | None = None,
) -> dict[str, str]:
    problem = aws_target_problem(
        endpoint_url=settings.AWS_ENDPOINT_URL, boundary_arn=settings.IRSA_PERMISSIONS_BOUNDARY_ARN
    )
    if problem:  # whatever DEBUG says: no role in real AWS without the boundary
        raise BackendError(problem)
    return render_workspace(
        spec,
        region=spec.cluster.region,
        sandbox_endpoint=settings.AWS_ENDPOINT_URL or None,
        permissions_boundary_arn=boundary_in_account(
            settings.IRSA_PERMISSIONS_BOUNDARY_ARN, spec.cluster.account_id
        ),
        backend=backend_kind(),
        key_deletion_window_days=settings.KMS_KEY_DELETION_WINDOW_DAYS,
        deployment_role=cluster_deployment_role(spec, purpose=purpose, run_id=run_id),
        max_retries=aws_max_retries,
    )


def boundary_in_account(arn: str, account_id: str) -> str | None:
    """The boundary policy of the same path and name in the cluster's account: a policy lives
    in one account, so each cluster account holds its own copy (docs/deploy.md)."""
    if not arn:
        return None
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or parts[4] in ("aws", account_id):
        return arn
    return ":".join([*parts[:4], account_id, parts[5]])


def cluster_deployment_role(
    spec: WorkspaceSpec, *, purpose: str, run_id: int | None
) -> DeploymentRole | None:
    """The deployment role of the spec's cluster as registered now (a spec names its cluster;
    the role is the cluster's current setting, not a snapshot in the run)."""
    cluster = Cluster.objects.filter(name=spec.cluster.name).first()
    if cluster is None:
        return None
    return deployment_role(cluster, purpose=purpose, run_id=run_id)


def aws_env() -> dict[str, str]:
    return {name: os.environ[name] for name in AWS_ENV_PASSTHROUGH if os.environ.get(name)}


def pg_create_state_row(state_key: str, terraform_version: str) -> bool:
    """Give a workspace an empty state row in the pg backend's table unless it has one.

    The table is the one the backend creates at ``init`` (``<schema>.states``: one row per
    Terraform workspace, ``default`` here), written as the backend writes it. A connection of its
    own, committed at once: Terraform must see the row even while the caller is in a transaction.
    """
    statement = psycopg.sql.SQL(
        "INSERT INTO {}.states (name, data) VALUES ('default', %s) ON CONFLICT (name) DO NOTHING"
    ).format(psycopg.sql.Identifier(state_key))
    with psycopg.connect(postgres_conn_str(connection.settings_dict), autocommit=True) as conn:
        return conn.execute(statement, [empty_state(terraform_version)]).rowcount == 1


def runs_dir() -> Path:
    return work_root() / "runs"


def parked_dir(plan_run_id: int) -> Path:
    """Where a plan run leaves its initialised directory for its apply (``WorkspaceRunner.park``);
    the run-directory sweep removes one nobody took within RUN_WORKDIR_MAX_AGE."""
    return runs_dir() / f"plan{plan_run_id}-parked"


def open_workspace(
    *,
    spec: WorkspaceSpec,
    state_key: str,
    sink: LogSink,
    label: str = "",
    workdir: Path | None = None,
    purpose: str = "run",
    run_id: int | None = None,
    aws_max_retries: int | None = None,
    reuse: Path | None = None,
) -> WorkspaceRunner:
    """A runner in a fresh working directory for this workspace's spec and state, or in the
    given existing one (a dead worker's, whose Terraform is being adopted), or in a parked plan
    directory it takes over (``reuse``; a fresh one when that is gone)."""
    existing = workdir is not None
    if workdir is None:
        workdir = runs_dir() / f"{label or state_key}-{uuid.uuid4().hex[:8]}"
    elif not workdir.resolve().is_relative_to(runs_dir().resolve()) or not workdir.is_dir():
        raise ValueError(f"{workdir} is not a run directory under {runs_dir()}")
    chain = toolchain()
    backend = workspace_backend(state_key, chain.version)
    return WorkspaceRunner(
        toolchain=chain,
        workdir=workdir,
        files=render_files(spec, purpose=purpose, run_id=run_id, aws_max_retries=aws_max_retries),
        modules_dir=MODULES_DIR,
        backend=backend,
        extra_env={
            **aws_env(),
            **(
                s3_endpoint_env(settings.AWS_ENDPOINT_URL, chain.version)
                if backend.kind == "s3"
                else {}
            ),
        },
        sink=sink,
        timeout=settings.CELERY_TASK_SOFT_TIME_LIMIT,
        lock_timeout=settings.TERRAFORM_LOCK_TIMEOUT,
        prepare_state=(
            (lambda: pg_create_state_row(state_key, chain.version))
            if backend.kind == "pg"
            else None
        ),
        existing=existing,
        reuse=reuse,
    )
