"""Local AWS for the demo and the tests: a moto server on 127.0.0.1 and the demo account set-up.

The server enforces IAM like AWS for what the portal provisions (web-identity trust checks, the
assumed role's requests to DynamoDB, KMS, S3, IAM and STS, iam:SimulatePrincipalPolicy) and has
a demo OIDC issuer that mints service-account tokens; see docs/sandbox.md.

Nothing in `provisioning/` imports this package; the portal only sees an endpoint URL.
"""

from sandbox.demo import DemoAws, create_demo_aws
from sandbox.oidc import mint_token
from sandbox.server import (
    PortInUseError,
    SandboxError,
    SandboxServer,
    client_env,
    start_sandbox,
)

__all__ = [
    "DemoAws",
    "PortInUseError",
    "SandboxError",
    "SandboxServer",
    "client_env",
    "create_demo_aws",
    "mint_token",
    "start_sandbox",
]
