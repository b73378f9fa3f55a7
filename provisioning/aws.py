"""The portal's one way into a cluster's AWS account: the worker's own credentials, or the
cluster's deployment role assumed with them.

Every AWS call the portal makes for a cluster (Terraform's provider, the verification after an
apply, the node role audit, reconciliation) goes through here, so a fleet of workers whose own
credentials may only ``sts:AssumeRole`` serves clusters in many accounts, and each account's
CloudTrail names the portal run or job behind every change (the role session name).

``deployment_role`` is pure (it is what the Terraform renderer receives); ``session_for_cluster``
makes the ``sts:AssumeRole`` call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
from botocore.config import Config
from django.conf import settings

# IAM propagation and the sandbox both answer quickly; a slow endpoint must not hold a run.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3})
SESSION_PREFIX = "irsa-portal"
# What the portal does in the account; the session name says it, CloudTrail records it.
PURPOSES = ("run", "verify", "audit", "reconcile", "preflight")
# sts:AssumeRole RoleSessionName: 2-64 of these characters.
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
SESSION_SECONDS = 3600


class ClusterAccount(Protocol):
    """What this module reads of a cluster (the model has it; tests may pass a stand-in)."""

    name: str
    region: str
    deployment_role_arn: str
    deployment_external_id: str


@dataclass(frozen=True)
class DeploymentRole:
    role_arn: str
    session_name: str
    external_id: str | None = None


@dataclass(frozen=True)
class AccountSession:
    """A boto3 session in one cluster's account and region, pointed where the settings say."""

    session: boto3.Session
    region: str
    endpoint_url: str | None
    role: DeploymentRole | None
    # One client per service: making one loads its service model (~0.1 s each).
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service,
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=CLIENT_CONFIG,
            )
        return self._clients[service]


def session_name(*, purpose: str, run_id: int | None = None) -> str:
    """``irsa-portal-run-42``: the run (or job) a change in the account came from."""
    if purpose not in PURPOSES:
        raise ValueError(f"Unknown purpose {purpose!r}; use one of: {', '.join(PURPOSES)}.")
    name = f"{SESSION_PREFIX}-{purpose}" + (f"-{run_id}" if run_id is not None else "")
    if not _SESSION_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid role session name.")
    return name


def deployment_role(
    cluster: ClusterAccount, *, purpose: str, run_id: int | None = None
) -> DeploymentRole | None:
    """The role to assume for this cluster, or None: the worker's own credentials apply."""
    if not cluster.deployment_role_arn:
        return None
    return DeploymentRole(
        role_arn=cluster.deployment_role_arn,
        session_name=session_name(purpose=purpose, run_id=run_id),
        external_id=cluster.deployment_external_id or None,
    )


def endpoint_url() -> str | None:
    return settings.AWS_ENDPOINT_URL or None


def session_for_cluster(
    cluster: ClusterAccount, *, purpose: str, run_id: int | None = None
) -> AccountSession:
    """A session in the cluster's account: the deployment role's when the cluster names one."""
    role = deployment_role(cluster, purpose=purpose, run_id=run_id)
    base = boto3.Session()
    if role is None:
        return AccountSession(base, cluster.region, endpoint_url(), None)
    sts = base.client(
        "sts", region_name=cluster.region, endpoint_url=endpoint_url(), config=CLIENT_CONFIG
    )
    arguments: dict[str, Any] = {
        "RoleArn": role.role_arn,
        "RoleSessionName": role.session_name,
        "DurationSeconds": SESSION_SECONDS,
    }
    if role.external_id:
        arguments["ExternalId"] = role.external_id
    credentials = sts.assume_role(**arguments)["Credentials"]
    assumed = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    return AccountSession(assumed, cluster.region, endpoint_url(), role)


def session_for_cluster_named(
    name: str, *, purpose: str, run_id: int | None = None
) -> AccountSession:
    """For callers holding a workspace spec: its cluster's name is the link to the row."""
    from provisioning.models import Cluster  # late: this module is imported by settings-free code

    return session_for_cluster(Cluster.objects.get(name=name), purpose=purpose, run_id=run_id)


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Code") or "")
    return ""
