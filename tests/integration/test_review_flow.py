"""The security review end to end (issue 8): real Terraform plans and an apply through a real
Celery worker on a private Redis, against the sandbox, on PostgreSQL. The worker stores each
plan's analysis; the API shows the policies before approval, for a create (the key a marked
placeholder) and for a change (the real key from the apply, and the grant diff against it)."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import reverse

from portal.celery import app as celery_app
from provisioning.models import ChangeRequest, ChangeStatus, RunKind, Workspace
from provisioning.permissions import SECURITY_GROUP
from provisioning.services.runs import wait_for_run
from sandbox.celery_worker import CeleryWorker
from sandbox.redis import RedisServer
from tests.factories import RESOURCES, TeamFactory, UserFactory, register_orders
from tests.integration.conftest import make_demo_cluster

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def point_celery_at(url: str) -> None:
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(scope="module")
def worker(sandbox, terraform_root, django_db_setup, django_db_blocker, tmp_path_factory):
    broker = RedisServer().start()
    previous = celery_app.conf.broker_url
    point_celery_at(broker.url)
    db = connection.settings_dict
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
    }
    running = CeleryWorker(env=env, log=tmp_path_factory.mktemp("worker") / "worker.log")
    yield running
    running.stop()
    broker.stop()
    point_celery_at(previous)


def wait_for_plans(change: ChangeRequest) -> dict[str, str]:
    hashes = {}
    for plan in change.runs.filter(kind=RunKind.PLAN):
        plan = wait_for_run(plan.pk)
        assert plan.status == "succeeded", plan.error
        hashes[str(plan.pk)] = plan.plan_sha256
    change.refresh_from_db()
    assert change.status == ChangeStatus.PLANNED
    return hashes


def api(client, method: str, name: str, *args, data=None):
    url = reverse(name, args=args)
    if method == "get":
        return client.get(url)
    return client.post(url, data or {}, content_type="application/json")


def test_the_api_shows_the_analysed_policies_before_approval(worker, client, demo_aws, unique_name):
    team = TeamFactory()
    developer, reviewer = UserFactory(), UserFactory()
    team.members.add(developer)
    reviewer.groups.add(Group.objects.get_or_create(name=SECURITY_GROUP)[0])
    cluster = make_demo_cluster(demo_aws)
    create = register_orders(developer, team, cluster, name=unique_name, service_accounts=["api"])
    client.force_login(developer)
    assert api(client, "post", "api-change-request-submit", create.pk).status_code == 200
    hashes = wait_for_plans(create)

    # A create: the worker stored the analysis; the key is a marked placeholder, never
    # "(known after apply)"; the real lint and matrix found nothing wrong.
    client.force_login(reviewer)
    review = api(client, "get", "api-change-request-detail", create.pk).json()["review"]
    [workspace] = review["workspaces"]
    analysis = workspace["analysis"]
    assert analysis["policies"]["kms_key"]["placeholder"] is True
    assert analysis["policies"]["trust_policy"]["Statement"][0]["Principal"] == {
        "Federated": demo_aws.oidc_provider_arn
    }
    assert analysis["findings"] == [] and analysis["matrix"]["verdict"] == "ok"
    assert review["summary"]["classification"] == "new_trust_subject"
    response = api(
        client, "post", "api-change-request-approve", create.pk, data={"plan_hashes": hashes}
    )
    assert response.status_code == 200, response.json()
    apply = Workspace.objects.get(microservice__name=unique_name).runs.get(kind=RunKind.APPLY)
    assert wait_for_run(apply.pk, timeout=400).status == "succeeded"
    key_arn = Workspace.objects.get(microservice__name=unique_name).kms_key_arn
    assert key_arn.startswith(f"arn:aws:kms:{demo_aws.region}:{demo_aws.account_id}:key/")

    # A change that drops the bucket: the real key, the removed grants, no new access.
    client.force_login(developer)
    spec = {**create.spec, "resources": RESOURCES[:1]}
    body = {"microservice": unique_name, "kind": "change", "spec": spec, "justification": "less"}
    change_id = api(client, "post", "api-change-requests", data=body).json()["id"]
    assert api(client, "post", "api-change-request-submit", change_id).status_code == 200
    wait_for_plans(ChangeRequest.objects.get(pk=change_id))
    client.force_login(reviewer)
    review = api(client, "get", "api-change-request-detail", change_id).json()["review"]
    [workspace] = review["workspaces"]
    analysis = workspace["analysis"]
    assert analysis["policies"]["kms_key"] == {
        **analysis["policies"]["kms_key"],
        "arn": key_arn,
        "placeholder": False,
    }
    removed = {g["action"] for g in analysis["diff"]["removed"]["identity"]}
    assert {"s3:GetObject", "s3:ListBucket"} <= removed
    assert analysis["diff"]["added"] == {"identity": [], "trust": [], "key": []}
    assert review["summary"]["classification"] == "no_new_access"
    assert ChangeRequest.objects.get(pk=change_id).status == ChangeStatus.PLANNED  # a human
