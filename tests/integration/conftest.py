"""Real Terraform, the real AWS provider, the sandbox and the pg backend on PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from django.db import connection

from provisioning.iam.spec import WorkspaceSpec, parse_workspace_spec
from provisioning.models import ChangeRequest, Cluster
from provisioning.terraform import context
from provisioning.terraform.runner import WorkspaceRunner
from provisioning.terraform.toolchain import FALLBACK_TERRAFORM
from tests.factories import ClusterFactory


@pytest.fixture(scope="session")
def terraform_root(tmp_path_factory) -> Path:
    """One work root per session, so the provider plugin cache is filled once."""
    return tmp_path_factory.mktemp("terraform")


@pytest.fixture
def tf_settings(settings, sandbox, terraform_root, monkeypatch, db):
    """Point the portal at the sandbox. ``db`` makes the pg backend's schemas land in the
    throwaway test database (the connection's NAME is the test database's from then on)."""
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    settings.AWS_REGION = "us-east-1"
    settings.TERRAFORM_WORK_DIR = terraform_root
    settings.TERRAFORM_BACKEND = "pg"
    settings.TERRAFORM_LOCK_TIMEOUT = "2s"
    settings.IRSA_PERMISSIONS_BOUNDARY_ARN = ""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    return settings


@pytest.fixture(params=["path", "1.0.3"])
def terraform_bin(request, tf_settings) -> str:
    """Every Terraform the project supports: the one on PATH and the pinned minimum."""
    tf_settings.TERRAFORM_BIN = "" if request.param == "path" else str(FALLBACK_TERRAFORM)
    return request.param


def make_demo_cluster(demo_aws, **fields) -> Cluster:
    """The portal's row for the sandbox's demo cluster: its account, region and OIDC provider."""
    return ClusterFactory(
        name="demo",
        account_id=demo_aws.account_id,
        region=demo_aws.region,
        oidc_provider_arn=demo_aws.oidc_provider_arn,
        **fields,
    )


def wait_for_change_status(change: ChangeRequest, *wanted: str, timeout: float = 60) -> None:
    """Wait for the request to reach one of ``wanted`` (a run's end moves it on in the same
    transaction; what follows, an automatic approval or the next runs, takes longer)."""
    deadline = time.monotonic() + timeout
    while True:
        change.refresh_from_db()
        if change.status in wanted:
            return
        assert time.monotonic() < deadline, f"#{change.pk} stayed {change.status}"
        time.sleep(0.2)


def other_sessions() -> set[int]:
    """The backend pids of every other session on the test database: a run executed in this
    process must leave none behind (threads that query open connections of their own)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def workspace_spec(demo_aws, name: str, resources: list[dict]) -> WorkspaceSpec:
    return parse_workspace_spec(
        {
            "microservice": name,
            "namespace": "shop",
            "service_accounts": [name],
            "cluster": {
                "name": "demo",
                "account_id": demo_aws.account_id,
                "region": demo_aws.region,
                "oidc_provider_arn": demo_aws.oidc_provider_arn,
            },
            "resources": resources,
        }
    )


REFERENCE_RESOURCES = [
    {
        "kind": "dynamodb_table",
        "name": "orders",
        "access": "read_write",
        "settings": {"partition_key": {"name": "order_id", "type": "S"}},
    },
    {"kind": "s3_bucket", "name": "invoices", "access": "read"},
]


@pytest.fixture
def unique_name() -> str:
    return f"svc{uuid.uuid4().hex[:8]}"


@pytest.fixture
def open_runner(tf_settings) -> Callable[..., WorkspaceRunner]:
    """Open runners in fresh directories; collect their logs; clean the directories up."""
    opened: list[WorkspaceRunner] = []

    def open_(spec: WorkspaceSpec, state_key: str, log: list[str] | None = None):
        sink = log.append if log is not None else (lambda line: None)
        runner = context.open_workspace(spec=spec, state_key=state_key, sink=sink)
        opened.append(runner)
        runner.init()
        return runner

    yield open_
    for runner in opened:
        runner.cleanup()


@pytest.fixture
def aws(sandbox) -> Callable[[str], object]:
    def client(service: str):
        return boto3.client(
            service,
            endpoint_url=sandbox.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return client
