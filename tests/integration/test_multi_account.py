"""One worker fleet, two AWS accounts: every AWS call goes through the cluster's deployment role.

The sandbox holds two accounts (moto's default and ``SECOND_ACCOUNT_ID``), each with the demo's
OIDC provider, boundary and node role and the portal's deployment role carrying the documented
policy. The Celery worker runs with the base credentials of an IAM user whose only permission is
``sts:AssumeRole`` on those roles; the gateway enforces that user's key like any other.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from provisioning.aws import session_for_cluster
from provisioning.iam import naming
from provisioning.iam.spec import parse_workspace_spec
from provisioning.models import ChangeStatus, RunKind, RunStatus, VerificationStatus, Workspace
from provisioning.services.changes import change_request_approve, change_request_submit
from provisioning.services.microservices import microservice_register
from provisioning.services.runs import wait_for_run
from provisioning.verification.services import cluster_audit_node_role
from sandbox.accounts import (
    SECOND_ACCOUNT_ID,
    admin_client,
    create_cluster_account,
    create_worker_user,
)
from sandbox.celery_worker import CeleryWorker
from tests.factories import ClusterFactory
from tests.integration.conftest import REFERENCE_RESOURCES, wait_for_change_status
from tests.integration.test_celery_runs import broker, worker_env  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def accounts(sandbox, demo_aws):
    url = sandbox.endpoint_url
    worker = create_worker_user(url, account_id=demo_aws.account_id)
    first = create_cluster_account(
        url, account_id=demo_aws.account_id, worker_account_id=demo_aws.account_id
    )
    second = create_cluster_account(
        url, account_id=SECOND_ACCOUNT_ID, worker_account_id=demo_aws.account_id
    )
    return worker, first, second


@pytest.fixture(scope="module")
def base_worker(worker_env, accounts, tmp_path_factory):  # noqa: F811
    worker, first, _ = accounts
    env = {
        **worker_env,
        "AWS_ACCESS_KEY_ID": worker.access_key_id,
        "AWS_SECRET_ACCESS_KEY": worker.secret_access_key,
        # Named once, in the first account: each cluster gets its own account's copy.
        "IRSA_PERMISSIONS_BOUNDARY_ARN": first.demo.permissions_boundary_arn,
    }
    running = CeleryWorker(env=env, log=tmp_path_factory.mktemp("accounts") / "worker.log")
    yield running
    running.stop()


def cluster_in(account, name: str):
    return ClusterFactory(
        name=name,
        account_id=account.demo.account_id,
        region=account.demo.region,
        oidc_provider_arn=account.demo.oidc_provider_arn,
        node_role_arn=account.demo.node_role_arn,
        deployment_role_arn=account.deployment_role_arn,
        deployment_external_id=account.external_id,
    )


@pytest.fixture
def base_env(accounts, monkeypatch, settings, sandbox):
    """This process, too, holds only the worker's base credentials."""
    worker, _, _ = accounts
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", worker.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", worker.secret_access_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return worker


def test_a_service_is_applied_to_two_accounts_through_their_deployment_roles(
    base_worker, base_env, accounts, sandbox, developer, team, reviewer, unique_name
):
    _, first, second = accounts
    clusters = [cluster_in(first, "dev"), cluster_in(second, "prod")]
    change = microservice_register(
        actor=developer,
        team=team,
        name=unique_name,
        namespace="shop",
        service_accounts=[unique_name],
        resources=REFERENCE_RESOURCES,
        clusters=clusters,
        justification="two accounts",
    )
    hashes = {}
    for plan in change_request_submit(actor=developer, change_request=change):
        plan = wait_for_run(plan.pk)
        assert plan.status == RunStatus.SUCCEEDED, (plan.error, plan.log[-2000:])
        hashes[str(plan.pk)] = plan.plan_sha256
    wait_for_change_status(change, ChangeStatus.PLANNED)
    change_request_approve(actor=reviewer, change_request=change, shown_plan_hashes=hashes)
    for apply in change.runs.filter(kind=RunKind.APPLY):
        finished = wait_for_run(apply.pk, timeout=300)
        assert finished.status == RunStatus.SUCCEEDED, finished.log[-4000:]
        assert base_env.secret_access_key not in finished.log
    wait_for_change_status(change, ChangeStatus.APPLIED)

    for cluster, account in zip(clusters, (first, second), strict=True):
        workspace = Workspace.objects.get(cluster=cluster, microservice__name=unique_name)
        spec = parse_workspace_spec(workspace.runs.filter(kind=RunKind.APPLY).get().spec)
        account_id = account.demo.account_id
        assert workspace.role_arn == naming.role_arn(spec)
        assert f":{account_id}:" in workspace.role_arn
        # The role is in the cluster's account, with that account's boundary, and nowhere else.
        iam = admin_client(sandbox.endpoint_url, "iam", account_id=account_id, region="us-east-1")
        role = iam.get_role(RoleName=naming.role_name(spec))["Role"]
        assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == (
            account.demo.permissions_boundary_arn
        )
        # The verification after the apply read the role back through the deployment role.
        assert workspace.verification_status == VerificationStatus.VERIFIED, workspace.verification
    other = admin_client(
        sandbox.endpoint_url, "iam", account_id=SECOND_ACCOUNT_ID, region="us-east-1"
    )
    dev_spec = parse_workspace_spec(
        Workspace.objects.get(cluster=clusters[0]).runs.filter(kind=RunKind.APPLY).get().spec
    )
    with pytest.raises(ClientError, match="NoSuchEntity"):
        other.get_role(RoleName=naming.role_name(dev_spec))


def test_base_credentials_are_refused_in_both_accounts(base_env, accounts, sandbox, db):
    _, first, second = accounts
    base = boto3.Session(
        aws_access_key_id=base_env.access_key_id,
        aws_secret_access_key=base_env.secret_access_key,
        region_name="us-east-1",
    )
    iam = base.client("iam", endpoint_url=sandbox.endpoint_url)
    dynamodb = base.client("dynamodb", endpoint_url=sandbox.endpoint_url)
    for account in (first, second):
        boundary = account.demo.permissions_boundary_arn
        with pytest.raises(ClientError, match="AccessDenied"):
            iam.create_role(
                RoleName="irsa-direct",
                Path="/irsa/",
                AssumeRolePolicyDocument="{}",
                PermissionsBoundary=boundary,
            )
        with pytest.raises(ClientError, match="AccessDenied"):
            iam.list_attached_role_policies(RoleName="demo-eks-node")
    with pytest.raises(ClientError, match="AccessDenied"):
        dynamodb.create_table(
            TableName="direct",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def test_the_portals_own_calls_go_through_the_deployment_role(base_env, accounts, sandbox):
    second = accounts[2]
    prod = cluster_in(second, "prod")
    session = session_for_cluster(prod, purpose="audit")
    identity = session.client("sts").get_caller_identity()
    assert identity["Account"] == SECOND_ACCOUNT_ID
    assert identity["Arn"].endswith(":assumed-role/irsa-portal-deployer/irsa-portal-audit")
    # The node role audit reads the second account's node role (the base key may not).
    audited = cluster_audit_node_role(cluster=prod)
    assert audited.node_role_status == "clean", audited.node_role_audit
    assert audited.node_role_audit["role_arn"] == second.demo.node_role_arn
