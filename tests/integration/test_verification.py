"""Least privilege proven live (issue 9), end to end: real Terraform through a real Celery worker
on a private Redis, against the sandbox with IAM enforcement, on PostgreSQL.

Microservices A (a table and a bucket, read_write) and B (a table, read) are provisioned through
the portal's services (register → submit → plan → approve → apply), ONE apply each for the whole
module; the worker verifies each apply. The later tests reuse the two applied workspaces: a
negative control with a hand-attached over-broad policy, the simulator path and the node role
audit.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import boto3
import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection

from portal.celery import app as celery_app
from provisioning.models import (
    AuditEvent,
    ChangeStatus,
    NodeRoleStatus,
    RunKind,
    VerificationStatus,
    Workspace,
)
from provisioning.permissions import SECURITY_GROUP
from provisioning.services.changes import change_request_approve, change_request_submit
from provisioning.services.runs import wait_for_run
from provisioning.verification import simulate
from provisioning.verification.services import cluster_audit_node_role, workspace_verify
from sandbox.celery_worker import CeleryWorker
from sandbox.demo import SANDBOX_CREDENTIALS
from sandbox.redis import RedisServer
from tests.factories import ClusterFactory, TeamFactory, UserFactory, register_orders
from tests.integration.conftest import wait_for_change_status

pytestmark = [pytest.mark.integration]
SUFFIX = uuid.uuid4().hex[:6]
A, B = f"va{SUFFIX}", f"vb{SUFFIX}"
A_RESOURCES = [
    {"kind": "dynamodb_table", "name": "orders", "access": "read_write"},
    {"kind": "s3_bucket", "name": "files", "access": "read_write"},
]
B_RESOURCES = [{"kind": "dynamodb_table", "name": "stock", "access": "read"}]


def point_celery_at(url: str) -> None:
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(scope="module")
def module_db(django_db_setup, django_db_blocker):
    """Rows committed for the whole module (the worker must see them); flushed at the end.

    pytest-django creates the test database only for sessions with a ``django_db`` test: the
    node role test of this module is one (pytest-django runs it before the unmarked tests)."""
    with django_db_blocker.unblock():
        assert connection.settings_dict["NAME"].startswith("test_"), "no throwaway test database"
        yield
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def mint_url(sandbox) -> str:
    return f"{sandbox.endpoint_url}/_sandbox/oidc/token"


@pytest.fixture(scope="module")
def worker(module_db, sandbox, demo_aws, terraform_root, mint_url, tmp_path_factory):
    broker = RedisServer().start()
    previous = celery_app.conf.broker_url
    point_celery_at(broker.url)
    db = connection.settings_dict
    mail = tmp_path_factory.mktemp("mail")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "SECRET_KEY": "worker-test-key",
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": broker.url,
        "AWS_ENDPOINT_URL": sandbox.endpoint_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "TERRAFORM_WORK_DIR": str(terraform_root),
        "TERRAFORM_BACKEND": "pg",
        "TERRAFORM_LOCK_TIMEOUT": "5s",
        "VERIFY_AFTER_APPLY": "1",
        "IRSA_TOKEN_MINT_URL": mint_url,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail),
    }
    running = CeleryWorker(env=env, log=tmp_path_factory.mktemp("worker") / "worker.log")
    running.mail = mail
    yield running
    running.stop()
    broker.stop()
    point_celery_at(previous)


@pytest.fixture(scope="module")
def world(module_db, demo_aws):
    team = TeamFactory(name=f"team-{SUFFIX}")
    developer = UserFactory(username=f"alice-{SUFFIX}", email="alice@example.com")
    team.members.add(developer)
    reviewer = UserFactory(username=f"rita-{SUFFIX}", email="rita@example.com")
    reviewer.groups.add(Group.objects.get_or_create(name=SECURITY_GROUP)[0])
    cluster = ClusterFactory(
        name="demo",
        account_id=demo_aws.account_id,
        region=demo_aws.region,
        oidc_provider_arn=demo_aws.oidc_provider_arn,
        node_role_arn=demo_aws.node_role_arn,
    )
    return {"team": team, "developer": developer, "reviewer": reviewer, "cluster": cluster}


def provision(world, name: str, resources: list[dict]) -> Workspace:
    """register → submit → plan (worker) → approve → apply (worker, then its verify step)."""
    change = register_orders(
        world["developer"],
        world["team"],
        world["cluster"],
        name=name,
        service_accounts=[name],
        resources=resources,
    )
    plans = change_request_submit(actor=world["developer"], change_request=change)
    hashes = {}
    for plan in plans:
        plan = wait_for_run(plan.pk)
        assert plan.status == "succeeded", plan.error
        hashes[str(plan.pk)] = plan.plan_sha256
    wait_for_change_status(change, ChangeStatus.PLANNED)
    change_request_approve(actor=world["reviewer"], change_request=change, shown_plan_hashes=hashes)
    workspace = Workspace.objects.get(microservice__name=name)
    apply = workspace.runs.filter(kind=RunKind.APPLY).latest("created_at")
    apply = wait_for_run(apply.pk, timeout=400)
    assert apply.status == "succeeded", apply.error
    workspace.refresh_from_db()
    return workspace


@pytest.fixture(scope="module")
def applied(worker, world):
    # B first: A's verification then has B's table and key as neighbours, and B's has none.
    b = provision(world, B, B_RESOURCES)
    a = provision(world, A, A_RESOURCES)
    return {"a": a, "b": b}


def probes_of(workspace: Workspace) -> dict[str, dict]:
    return {p["id"]: p for p in workspace.verification["probes"]}


def test_a_is_verified_live_after_its_apply(applied):
    a = applied["a"]
    assert a.verification["mode"] == "live"
    assert a.verification_status == VerificationStatus.VERIFIED, a.verification["failed"]
    probes = probes_of(a)
    own = [p for p in probes.values() if p["category"] == "own" and p["expected"] == "allowed"]
    assert {p["action"] for p in own} >= {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "s3:PutObject",
        "s3:GetObject",
        "s3:ListBucket",
        "kms:GenerateDataKey",  # through S3 with SSE-KMS and A's own key
        "kms:Decrypt",  # through DynamoDB: A's table is under A's key
    }
    assert all(p["actual"] == "allowed" for p in own)
    key_id = a.kms_key_arn.rsplit("/", 1)[1]
    assert probes[f"{A}/own/kms:Decrypt/{key_id}@dynamodb"]["actual"] == "allowed"
    sensitive = {p["action"] for p in probes.values() if p["category"] == "sensitive"}
    assert sensitive >= {
        "dynamodb:DeleteTable",
        "s3:PutBucketPolicy",
        "kms:ScheduleKeyDeletion",
        "iam:CreateRole",
    }
    assert AuditEvent.objects.filter(action="workspace.verified", object_id=str(a.pk)).exists()


def test_a_pod_is_denied_b_table_and_key(applied):
    a, b = applied["a"], applied["b"]
    neighbour = [p for p in probes_of(a).values() if p["category"] == "neighbour"]
    b_table = b.resource_arns["dynamodb_table/stock"]
    on_table = [p for p in neighbour if p["resource"] == b_table]
    on_key = [p for p in neighbour if p["resource"] == b.kms_key_arn]
    assert {p["action"] for p in on_table} >= {"dynamodb:GetItem", "dynamodb:PutItem"}
    assert on_key, "A's pod never tried B's key"
    assert all(p["actual"] == "denied" and p["ok"] for p in on_table + on_key)


def test_b_pod_is_denied_put_item_on_its_own_table_and_a_bucket(applied):
    b = applied["b"]
    assert b.verification_status == VerificationStatus.VERIFIED, b.verification["failed"]
    table = b.resource_arns["dynamodb_table/stock"]
    put = probes_of(b)[f"{B}/own/dynamodb:PutItem/{table.rsplit('/', 1)[1]}"]
    assert (put["expected"], put["actual"]) == ("denied", "denied")


def test_unlisted_and_other_namespace_service_accounts_are_refused_at_assume(applied):
    trust = {p["id"]: p for p in probes_of(applied["a"]).values() if p["category"] == "trust"}
    assert trust[f"{A}/trust/assume"]["actual"] == "allowed"
    assert trust["irsa-verification-unlisted/trust/assume"]["actual"] == "denied"
    assert trust[f"shop-elsewhere:{A}/trust/assume"]["actual"] == "denied"
    assert all(p["ok"] for p in trust.values())


def admin(service: str, sandbox):
    return boto3.client(
        service, endpoint_url=sandbox.endpoint_url, region_name="us-east-1", **SANDBOX_CREDENTIALS
    )


@pytest.fixture
def overbroad(applied, sandbox):
    """A policy attached to A's role by hand: read on B's table, as a careless admin would.
    B's items stay closed (B's key policy names only B's role); B's table description opens."""
    a, b = applied["a"], applied["b"]
    iam = admin("iam", sandbox)
    role = a.role_arn.rsplit("/", 1)[1]
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["dynamodb:DescribeTable", "dynamodb:GetItem"],
                "Resource": [b.resource_arns["dynamodb_table/stock"]],
            }
        ],
    }
    iam.put_role_policy(RoleName=role, PolicyName="by-hand", PolicyDocument=json.dumps(document))
    table = b.resource_arns["dynamodb_table/stock"].rsplit("/", 1)[1]
    yield f"{A}/neighbour/dynamodb:DescribeTable/{table}"
    iam.delete_role_policy(RoleName=role, PolicyName="by-hand")


def test_negative_control_an_overbroad_policy_fails_the_live_verification(
    applied, overbroad, worker, sandbox, settings, monkeypatch, mint_url
):
    settings.IRSA_TOKEN_MINT_URL = mint_url
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    settings.SECURITY_NOTIFY_EMAILS = ["security@example.com"]
    for name, value in SANDBOX_CREDENTIALS.items():
        monkeypatch.setenv(name.upper(), value)
    a = applied["a"]
    result = workspace_verify(workspace=a)
    assert result["failed"] == [overbroad]
    probes = probes_of(Workspace.objects.get(pk=a.pk))
    failing = probes[overbroad]
    assert (failing["expected"], failing["actual"]) == ("denied", "allowed")
    item = probes[overbroad.replace("dynamodb:DescribeTable", "dynamodb:GetItem")]
    assert (item["actual"], item["ok"]) == ("denied", True)  # B's key still refuses A
    a.refresh_from_db()
    assert a.verification_status == VerificationStatus.FAILED
    event = AuditEvent.objects.filter(
        action="workspace.verification_failed", object_id=str(a.pk)
    ).latest("created_at")
    assert [p["id"] for p in event.data["failed_probes"]] == [overbroad]
    deadline = time.monotonic() + 60
    while not list(worker.mail.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.5)
    mail = "".join(f.read_text() for f in worker.mail.iterdir())
    assert overbroad in mail and "alice@example.com" in mail and "security@example.com" in mail


def test_simulator_path_passes_and_catches_the_overbroad_policy(
    applied, sandbox, settings, monkeypatch
):
    settings.IRSA_TOKEN_MINT_URL = ""
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    for name, value in SANDBOX_CREDENTIALS.items():
        monkeypatch.setenv(name.upper(), value)
    monkeypatch.setattr(simulate, "RETRY_DELAYS_S", (0.5,))
    a = applied["a"]
    clean = workspace_verify(workspace=a)
    assert clean["mode"] == "simulated" and clean["failed"] == [], clean["failed"]
    trust = [p for p in clean["probes"] if p["category"] == "trust"]
    assert [p["actual"] for p in trust] == ["allowed", "denied", "denied"]
    iam = admin("iam", sandbox)
    role = a.role_arn.rsplit("/", 1)[1]
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "kms:ScheduleKeyDeletion", "Resource": a.kms_key_arn}
        ],
    }
    iam.put_role_policy(
        RoleName=role, PolicyName="by-hand-kms", PolicyDocument=json.dumps(document)
    )
    try:
        caught = workspace_verify(workspace=a)
    finally:
        iam.delete_role_policy(RoleName=role, PolicyName="by-hand-kms")
    assert any("kms:ScheduleKeyDeletion" in f for f in caught["failed"]), caught["failed"]


@pytest.mark.django_db(transaction=True)
def test_node_role_audit_flags_an_extra_s3_policy_and_passes_the_clean_one(
    demo_aws, sandbox, settings, monkeypatch
):
    """Marked (unlike the tests above, which share the module's committed rows), so pytest-django
    runs it first and creates the test database; it uses no row of the module's own."""
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    for name, value in SANDBOX_CREDENTIALS.items():
        monkeypatch.setenv(name.upper(), value)
    demo = ClusterFactory(
        name=f"clean{SUFFIX}",
        account_id=demo_aws.account_id,
        region=demo_aws.region,
        oidc_provider_arn=demo_aws.oidc_provider_arn,
        node_role_arn=demo_aws.node_role_arn,
    )
    clean = cluster_audit_node_role(cluster=demo)
    assert clean.node_role_status == NodeRoleStatus.CLEAN, clean.node_role_audit
    iam = admin("iam", sandbox)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    name = f"dirty-node-{SUFFIX}"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    for policy in demo_aws.node_policy_arns:
        iam.attach_role_policy(RoleName=name, PolicyArn=policy)
    iam.attach_role_policy(
        RoleName=name, PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
    )
    dirty = ClusterFactory(
        name=f"dirty{SUFFIX}",
        account_id=demo_aws.account_id,
        region=demo_aws.region,
        oidc_provider_arn=demo_aws.oidc_provider_arn,
        node_role_arn=arn,
    )
    dirty = cluster_audit_node_role(cluster=dirty)
    assert dirty.node_role_status == NodeRoleStatus.FLAGGED
    assert [f["policy"] for f in dirty.node_role_audit["flagged"]] == [
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
    ]
    changed = AuditEvent.objects.filter(
        action="cluster.node_role_audit_changed", object_id=str(dirty.pk)
    )
    assert changed.count() == 1
    cluster_audit_node_role(cluster=dirty)  # the same result again is not a change
    assert changed.count() == 1
