"""`python -m sandbox.moto_app --host H --port P`: moto's server with the sandbox's extensions.

The same app `python -m moto.server` builds (DomainDispatcherApplication over moto's backends),
wrapped in `SandboxGateway` — the OIDC issuer, the web-identity trust checks, authorization of
STS-issued credentials and the policy simulator. The gateway must run in this process because
it reads moto's in-memory backends directly; moto's own files are never changed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

from sandbox.gateway import SandboxGateway


def build_app() -> SandboxGateway:
    moto_app = DomainDispatcherApplication(create_backend_app)
    return SandboxGateway(moto_app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.moto_app", description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    # moto builds URLs back to itself (e.g. for Lambda) from MOTO_PORT, as its own server sets it.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    # Exit cleanly (code 0) on SIGTERM, as moto's own server does.
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
    run_simple(
        args.host,
        args.port,
        build_app(),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    return 0


def _exit(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


if __name__ == "__main__":
    sys.exit(main())
