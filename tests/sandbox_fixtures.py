"""Pytest plugin: one local AWS sandbox (moto server) for the whole test session.

Register it from the root conftest with `pytest_plugins = ["tests.sandbox_fixtures"]`. Needs no
Django. The server is shared: a test that must start from an empty AWS starts its own with
`start_sandbox()` instead of resetting this one, which would pull the demo set-up from under the
other tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.demo import DemoAws, create_demo_aws
from sandbox.server import SandboxServer, start_sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """A moto server on a free loopback port, stopped when the session ends."""
    with start_sandbox() as server:
        yield server


@pytest.fixture(scope="session")
def demo_aws(sandbox: SandboxServer) -> DemoAws:
    """The demo cluster's OIDC provider, permissions boundary and node role in the sandbox."""
    return create_demo_aws(sandbox.endpoint_url)
