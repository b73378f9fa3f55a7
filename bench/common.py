"""What every benchmark shares: its own sandbox, Redis, Celery workers and database settings,
plus medians, timers, the machine description and the plain-Terraform baseline.

Import order matters: `Stack.__enter__` sets the environment and only then calls
`django.setup()`, so import anything from `provisioning` inside functions, after the stack is up.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DATABASE_NAME = os.environ.get("BENCH_DATABASE_NAME", "bench_irsa")  # one per concurrent bench
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}"
REGION = "us-east-1"
# Terraform state schemas this benchmark suite creates in bench_irsa (dropped on exit).
STATE_SCHEMA_PREFIXES = ("bench_", "irsa_ws_")
REFERENCE_RESOURCES = [  # the same as tests/integration/conftest.py
    {
        "kind": "dynamodb_table",
        "name": "orders",
        "access": "read_write",
        "settings": {"partition_key": {"name": "order_id", "type": "S"}},
    },
    {"kind": "s3_bucket", "name": "invoices", "access": "read"},
]
SMALL_RESOURCES = [{"kind": "dynamodb_table", "name": "items", "access": "read"}]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def load_average() -> str:
    return "/".join(Path("/proc/loadavg").read_text().split()[:3])


def _run_text(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()


def machine_lines(terraform_binaries: Iterable[str | Path] = ()) -> list[str]:
    """The machine, as markdown bullet lines: what docs/benchmarks.md records next to results."""
    from importlib.metadata import version

    from provisioning.terraform.toolchain import terraform_version

    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    lines = [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} CPUs (nproc {_run_text(['nproc'])}), "
        f"{mem_kb / 1024 / 1024:.1f} GiB RAM, kernel {platform.release()}",
        f"- Python {platform.python_version()}, moto {version('moto')}, celery {version('celery')}",
    ]
    for binary in terraform_binaries:
        lines.append(f"- Terraform {terraform_version(Path(binary))} ({binary})")
    lines.append(f"- load average (1/5/15 min) at start: {load_average()}")
    return lines


# --- database -------------------------------------------------------------------------------


def ensure_database() -> None:
    listed = _run_text(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "SELECT datname FROM pg_database"]
    )
    if DATABASE_NAME not in listed.split():
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DATABASE_NAME], check=True)


def drop_state_schemas() -> int:
    """Drop the Terraform state schemas the benchmarks made in bench_irsa; return how many."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace")
        names = [n for (n,) in cursor.fetchall() if n.startswith(STATE_SCHEMA_PREFIXES)]
        for name in names:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    return len(names)


# --- processes: sandbox, redis, celery workers ------------------------------------------------


class Stack:
    """Sandbox + demo AWS set-up + settings (+ Redis when `broker`), torn down on exit.

    Terraform runs in /tmp/bench-<name>-*/ ; the state lives in bench_irsa (pg backend).
    """

    def __init__(self, name: str, *, broker: bool = False, terraform_bin: str = "") -> None:
        self.name = name
        self.broker = broker
        self.terraform_bin = terraform_bin
        self.workers: list[Any] = []
        self._exit = ExitStack()

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def _start(self) -> None:
        from sandbox.demo import create_demo_aws
        from sandbox.server import client_env, start_sandbox

        self.work_dir = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-", dir="/tmp"))
        self._exit.callback(shutil.rmtree, self.work_dir, ignore_errors=True)
        ensure_database()
        self.sandbox = start_sandbox()
        self._exit.callback(self.sandbox.stop)
        self.demo = create_demo_aws(self.sandbox.endpoint_url, region=REGION)
        # AWS_*: the sandbox's endpoint and its fake "testing" keys. DEBUG=1 gives Django its
        # throwaway SECRET_KEY, which is all a benchmark needs.
        os.environ.update(client_env(self.sandbox.endpoint_url, region=REGION))
        # As under `make run`, a verification after apply gets its tokens from the sandbox's issuer;
        # IRSA_TOKEN_MINT_URL="" in the caller's environment selects the simulator path instead.
        os.environ.setdefault(
            "IRSA_TOKEN_MINT_URL", f"{self.sandbox.endpoint_url}/_sandbox/oidc/token"
        )
        os.environ.update(
            DJANGO_SETTINGS_MODULE="portal.settings",
            DEBUG="1",
            DATABASE_URL=DATABASE_URL,
            TERRAFORM_WORK_DIR=str(self.work_dir / "terraform"),
            TERRAFORM_BACKEND="pg",
            TERRAFORM_BIN=self.terraform_bin,
            IRSA_PERMISSIONS_BOUNDARY_ARN=self.demo.permissions_boundary_arn,
            LOG_LEVEL="WARNING",
        )
        if self.broker:
            from sandbox.redis import RedisServer

            self.redis = RedisServer().start()
            self._exit.callback(self.redis.stop)
            os.environ["CELERY_BROKER_URL"] = self.redis.url
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        self._exit.callback(self._drop_schemas)

    def _drop_schemas(self) -> None:
        from django.db import connection

        log(f"dropped {drop_state_schemas()} state schemas from {DATABASE_NAME}")
        connection.close()

    def start_workers(self, count: int) -> list[Any]:
        from sandbox.celery_worker import CeleryWorker

        started = []
        for i in range(len(self.workers), len(self.workers) + count):
            log_path = self.work_dir / f"bench{i}.log"
            started.append(CeleryWorker(env=os.environ, log=log_path, name=f"bench{i}"))
        self.workers += started
        return started

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []

    def __exit__(self, *exc: object) -> None:
        self.stop_workers()
        self._exit.close()

    # --- workspaces ------------------------------------------------------------------------

    def spec_dict(self, microservice: str, resources: list[dict] = REFERENCE_RESOURCES) -> dict:
        """The spec a Run carries (the shape of tests/integration's `spec_for`)."""
        return {
            "microservice": microservice,
            "namespace": "shop",
            "service_accounts": [microservice],
            "resources": resources,
            "cluster": {
                "name": "demo",
                "account_id": self.demo.account_id,
                "region": self.demo.region,
                "oidc_provider_arn": self.demo.oidc_provider_arn,
            },
        }

    def spec(self, microservice: str, resources: list[dict] = REFERENCE_RESOURCES) -> Any:
        from provisioning.iam.spec import parse_workspace_spec

        return parse_workspace_spec(self.spec_dict(microservice, resources))

    def workspace_row(self, microservice: str) -> Any:
        """A Team/Microservice/Workspace in the demo cluster, for runs through Celery."""
        from provisioning.models import Cluster, Environment, Microservice, Team, Workspace

        cluster, _ = Cluster.objects.get_or_create(
            name="demo",
            defaults={
                "environment": Environment.DEV,
                "account_id": self.demo.account_id,
                "region": self.demo.region,
                "oidc_provider_arn": self.demo.oidc_provider_arn,
            },
        )
        team, _ = Team.objects.get_or_create(name="bench")
        service = Microservice.objects.create(
            name=microservice, team=team, namespace="shop", service_accounts=[microservice]
        )
        return Workspace.objects.create(microservice=service, cluster=cluster)


def quiet(line: str) -> None:
    """A log sink that drops Terraform's output (errors still carry its tail)."""


# --- plain Terraform: the baseline without the portal -----------------------------------------


class RawTerraform:
    """`terraform` on a rendered directory with argument lists, the runner's environment and the
    same `-backend-config` pairs: what the portal adds nothing to."""

    def __init__(self, files: dict[str, str], state_key: str, workdir: Path) -> None:
        from provisioning.terraform import context
        from provisioning.terraform.toolchain import terraform_env

        toolchain = context.toolchain()
        backend = context.workspace_backend(state_key)
        self.workdir = workdir
        workdir.mkdir(parents=True)
        for name, text in files.items():
            (workdir / name).write_text(text)
        (workdir / "modules").symlink_to(context.MODULES_DIR, target_is_directory=True)
        self.binary = str(toolchain.binary)
        self.backend_args = [f"-backend-config={k}={v}" for k, v in backend.options.items()]
        self.env = terraform_env(
            cli_config=toolchain.cli_config,
            base=os.environ,
            extra={
                **context.aws_env(),
                **backend.secret_env,
                "TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE": "true",
            },
        )

    def run(self, *args: str) -> None:
        done = subprocess.run(
            [self.binary, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"terraform {args[0]} failed: {(done.stdout + done.stderr)[-3000:]}")

    def init(self) -> None:
        self.run("init", "-input=false", "-reconfigure", *self.backend_args)

    def plan(self) -> None:
        self.run("plan", "-input=false", "-out=tfplan")

    def show_json(self) -> None:
        self.run("show", "-json", "tfplan")

    def apply(self) -> None:
        self.run("apply", "-input=false", "tfplan")

    def destroy(self) -> None:
        self.run("destroy", "-input=false", "-auto-approve")

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
