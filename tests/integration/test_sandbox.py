"""The local AWS sandbox: a real moto server child process, driven with boto3."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from provisioning.iam.catalog import load_catalog
from sandbox import server as sandbox_server
from sandbox.demo import NODE_POLICY_NAMES, NODE_ROLE_NAME, DemoAws, create_demo_aws
from sandbox.server import (
    PortInUseError,
    SandboxError,
    SandboxServer,
    start_sandbox,
    wait_until_ready,
)

# Harmless when the root conftest registers the plugin too: pytest loads a plugin module once.
pytest_plugins = ["tests.sandbox_fixtures"]
pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def iam_client(server: SandboxServer) -> Any:  # boto3 clients have no static type here
    return boto3.client(
        "iam",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port held by a plain socket that listens and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(16)
        yield holder.getsockname()[1]


def test_sandbox_listens_on_a_free_loopback_port(sandbox: SandboxServer) -> None:
    assert sandbox.endpoint_url == f"http://127.0.0.1:{sandbox.port}"
    assert sandbox.port > 0
    assert sandbox.process.poll() is None
    # moto's server wrapped in the sandbox's IAM enforcement, not plain `moto.server`.
    assert sandbox.process.args[1:3] == ["-m", "sandbox.moto_app"]


def test_demo_creates_the_clusters_oidc_provider(sandbox: SandboxServer, demo_aws: DemoAws) -> None:
    iam = iam_client(sandbox)
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=demo_aws.oidc_provider_arn)
    assert provider["ClientIDList"] == ["sts.amazonaws.com"]
    assert all(re.fullmatch(r"[0-9a-f]{40}", t) for t in provider["ThumbprintList"])
    assert re.fullmatch(
        r"oidc\.eks\.us-east-1\.amazonaws\.com/id/[0-9A-F]{32}", demo_aws.oidc_issuer
    )
    assert demo_aws.oidc_provider_arn == (
        f"arn:aws:iam::123456789012:oidc-provider/{demo_aws.oidc_issuer}"
    )
    assert demo_aws.account_id == "123456789012"


def test_demo_is_idempotent(sandbox: SandboxServer, demo_aws: DemoAws) -> None:
    again = create_demo_aws(sandbox.endpoint_url)

    assert again == demo_aws
    iam = iam_client(sandbox)
    assert len(iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]) == 1
    # The session's sandbox is shared: workspaces' own policies live under /irsa/ too.
    policies = iam.list_policies(Scope="Local", PathPrefix="/irsa/")["Policies"]
    boundaries = [p["Arn"] for p in policies if p["PolicyName"] == "irsa-permissions-boundary"]
    assert boundaries == [demo_aws.permissions_boundary_arn]


def test_boundary_allows_exactly_the_catalog_actions(
    sandbox: SandboxServer, demo_aws: DemoAws
) -> None:
    iam = iam_client(sandbox)
    policy = iam.get_policy(PolicyArn=demo_aws.permissions_boundary_arn)["Policy"]
    version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])[
        "PolicyVersion"
    ]
    document = version["Document"]
    document = json.loads(document) if isinstance(document, str) else document
    allowed = {a for s in document["Statement"] for a in s["Action"]}

    catalog = load_catalog()
    granted = {
        action
        for kind in catalog.kinds.values()
        for level in kind.levels.values()
        for action in [*(a for s in level.statements for a in s.actions), *level.kms_actions]
    }
    assert allowed == granted
    assert all("*" not in action for action in allowed)
    assert {a.split(":")[0] for a in allowed} == {"dynamodb", "kms", "s3"}
    assert policy["Path"] == "/irsa/"
    assert all(s["Effect"] == "Allow" for s in document["Statement"])


def test_node_role_has_only_the_node_policies(sandbox: SandboxServer, demo_aws: DemoAws) -> None:
    attached = iam_client(sandbox).list_attached_role_policies(RoleName=NODE_ROLE_NAME)

    names = sorted(p["PolicyName"] for p in attached["AttachedPolicies"])
    assert names == sorted(NODE_POLICY_NAMES)
    assert demo_aws.node_role_arn == f"arn:aws:iam::123456789012:role/{NODE_ROLE_NAME}"


def test_demo_falls_back_to_local_node_policies_without_aws_managed_ones() -> None:
    with start_sandbox(load_aws_managed_policies=False) as server:
        first = create_demo_aws(server.endpoint_url)
        second = create_demo_aws(server.endpoint_url)

    assert first == second
    assert first.node_policy_arns == tuple(
        f"arn:aws:iam::123456789012:policy/{name}" for name in NODE_POLICY_NAMES
    )


def test_reset_forgets_everything_and_stop_ends_the_child() -> None:
    with start_sandbox() as server:
        create_demo_aws(server.endpoint_url)
        server.reset()
        providers = iam_client(server).list_open_id_connect_providers()
        assert providers["OpenIDConnectProviderList"] == []

    assert server.process.returncode is not None


def test_busy_port_is_refused_before_starting(held_port: int) -> None:
    with pytest.raises(PortInUseError) as raised:
        start_sandbox(port=held_port, startup_timeout=60)

    assert str(raised.value) == (
        f"port {held_port} on 127.0.0.1 is already in use; stop what runs there or choose "
        "another port with SANDBOX_PORT"
    )


def test_busy_port_is_reported_when_the_child_exits_early(
    held_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The port can be taken between our check and the child's bind; skip the check to make the
    # child meet the busy port itself, and expect the same message, not a 60 s timeout.
    monkeypatch.setattr(sandbox_server, "_check_port_free", lambda host, port: None)

    with pytest.raises(PortInUseError, match=f"port {held_port} on 127.0.0.1 is already in use"):
        start_sandbox(port=held_port, startup_timeout=60)


def test_a_server_that_never_answers_hits_the_timeout(held_port: int) -> None:
    with pytest.raises(SandboxError) as raised:
        wait_until_ready(f"http://127.0.0.1:{held_port}", timeout=1.5)

    message = str(raised.value)
    assert f"127.0.0.1:{held_port} did not answer GET /moto-api/ within 1.5 s" in message
    assert "startup_timeout" in message


def test_python_m_sandbox_prints_the_environment_and_stops_on_sigterm() -> None:
    port = sandbox_server.find_free_port()
    env = {**os.environ, "SANDBOX_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    try:
        seen = _read_until(lines, "export IRSA_PERMISSIONS_BOUNDARY_ARN=")
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=30)

    assert f"Sandbox ready: AWS API at http://127.0.0.1:{port}" in seen
    assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}" in seen
    assert "export AWS_ACCESS_KEY_ID=testing" in seen
    assert "export IRSA_PERMISSIONS_BOUNDARY_ARN=arn:aws:iam::123456789012:policy/irsa/" in seen
    assert f"pod tokens    POST http://127.0.0.1:{port}/_sandbox/oidc/token" in seen
    assert returncode == 0


def _read_until(lines: queue.Queue[str], marker: str, timeout: float = 60) -> str:
    seen = ""
    while marker not in seen:
        try:
            seen += lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no {marker!r} within {timeout} s; output so far:\n{seen}")
    return seen


@pytest.mark.parametrize("port", [0, 70000])
def test_a_port_outside_the_tcp_range_is_refused(port: int) -> None:
    with pytest.raises(SandboxError, match=f"{port} is not a TCP port; choose 1-65535"):
        start_sandbox(port=port)
