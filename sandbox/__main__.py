"""`python -m sandbox`: run the local AWS sandbox in the foreground until Ctrl-C.

The port comes from --port, else SANDBOX_PORT, else 4566 (the port AWS tooling expects for a
local AWS). It prints the environment the portal, the worker and the AWS CLI need to use it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from types import FrameType

from sandbox.demo import create_demo_aws
from sandbox.oidc import TOKEN_PATH
from sandbox.server import SandboxError, client_env, start_sandbox

DEFAULT_PORT = 4566


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    # SIGTERM (docker stop, a supervisor) must stop as cleanly as Ctrl-C, at any moment: the
    # `with` block below and start_sandbox both stop the moto child on KeyboardInterrupt.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with start_sandbox(port=args.port, host=args.host) as server:
            _announce(server.endpoint_url, region=args.region, demo=not args.no_demo)
            code = server.process.wait()
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sandbox: stopped")
        return 0
    print(f"sandbox: the moto server exited on its own with code {code}", file=sys.stderr)
    return 1


def _announce(endpoint_url: str, *, region: str, demo: bool) -> None:
    """Create the demo set-up unless told not to, then print how to reach the sandbox."""
    env = client_env(endpoint_url, region=region)
    if demo:
        aws = create_demo_aws(endpoint_url, region=region)
        env["IRSA_PERMISSIONS_BOUNDARY_ARN"] = aws.permissions_boundary_arn
        print(f"demo cluster: OIDC provider {aws.oidc_provider_arn}")
        print(f"              node role     {aws.node_role_arn}")
        print(f"              pod tokens    POST {endpoint_url}{TOKEN_PATH} (docs/sandbox.md)")
    # scripts/run.sh waits for this line.
    print(f"Sandbox ready: AWS API at {endpoint_url} (Ctrl-C to stop). Use it with:")
    for name, value in env.items():
        print(f"export {name}={shlex.quote(value)}")
    sys.stdout.flush()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument(
        "--port",
        type=int,
        default=_port_from_env(),
        help=f"port to listen on (default: $SANDBOX_PORT or {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1; 0.0.0.0 only inside a container)",
    )
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument(
        "--no-demo",
        action="store_true",
        help="start empty, without the demo OIDC provider, boundary and node role",
    )
    return parser.parse_args(argv)


def _port_from_env() -> int:
    raw = os.environ.get("SANDBOX_PORT", "")
    if not raw:
        return DEFAULT_PORT
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(
            f"SANDBOX_PORT={raw!r} is not a port number; set it to e.g. 4566"
        ) from None


if __name__ == "__main__":
    sys.exit(main())
