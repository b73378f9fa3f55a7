"""A moto server on the loopback interface, run as a child process: the local AWS API.

The child is `python -m sandbox.moto_app` (moto's server with the sandbox's IAM enforcement and
OIDC issuer, see sandbox/gateway.py), started from an argument list. Start-up fails fast and says
why: a busy port is refused before the child starts (and again if the child exits early), and a
server that does not answer within the timeout is stopped and reported with the tail of its output.
"""

from __future__ import annotations

import collections
import errno
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO

DEFAULT_HOST = "127.0.0.1"
_REPO_ROOT = Path(__file__).resolve().parent.parent
READY_PATH = "/moto-api/"
RESET_PATH = "/moto-api/reset"
STOP_GRACE_SECONDS = 5.0
OUTPUT_TAIL_LINES = 40
# A port picked by the OS can be taken by someone else before the child binds it; try a few.
FREE_PORT_ATTEMPTS = 3
_POLL_INTERVAL = 0.1
_REQUEST_TIMEOUT = 2.0
_PORT_IN_USE_MARKERS = ("Address already in use", "is in use by another program")
# The sandbox is local: an HTTP_PROXY in the environment must not route our polls elsewhere.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SandboxError(RuntimeError):
    """The sandbox could not be started or reached; the message says what to change."""


class PortInUseError(SandboxError):
    """The requested port is held by another process."""


class SandboxServer:
    """A running moto server. Stop it with `.stop()` or use it as a context manager."""

    def __init__(self, process: subprocess.Popen[str], *, host: str, port: int) -> None:
        self.process = process
        self.host = host
        self.port = port
        self._output: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        self._reader = _start_output_reader(process.stdout, self._output)

    @property
    def endpoint_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def output_tail(self) -> str:
        """The last lines the child printed: moto's own explanation when something fails."""
        return "".join(self._output)

    def reset(self) -> None:
        """Forget every resource in every backend, as if the server had just started."""
        try:
            status = _http_status(self.endpoint_url + RESET_PATH, method="POST", timeout=30)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise SandboxError(
                f"resetting the sandbox at {self.endpoint_url} failed: {exc}"
            ) from exc
        if status != 200:
            raise SandboxError(f"resetting the sandbox at {self.endpoint_url} answered {status}")

    def stop(self) -> None:
        """Terminate the child; kill it when it does not exit within a few seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=STOP_GRACE_SECONDS)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_sandbox(
    *,
    port: int | None = None,
    host: str = DEFAULT_HOST,
    startup_timeout: float = 20.0,
    load_aws_managed_policies: bool = True,
) -> SandboxServer:
    """Start a moto server on `port` (a free one when None) and wait until it answers."""
    if port is not None:
        if not 0 < port < 65536:
            raise SandboxError(f"{port} is not a TCP port; choose 1-65535 with SANDBOX_PORT")
        _check_port_free(host, port)
        return _start_on_port(host, port, startup_timeout, load_aws_managed_policies)
    for _ in range(FREE_PORT_ATTEMPTS - 1):
        try:
            return _start_on_port(
                host, find_free_port(host), startup_timeout, load_aws_managed_policies
            )
        except PortInUseError:
            continue  # taken between our look and the child's bind: pick another
    return _start_on_port(host, find_free_port(host), startup_timeout, load_aws_managed_policies)


def client_env(endpoint_url: str, *, region: str = "us-east-1") -> dict[str, str]:
    """The environment that points boto3, the AWS CLI and the portal at the sandbox."""
    # moto accepts any credentials; fixed fake ones keep real keys out of the sandbox's logs.
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


def find_free_port(host: str = DEFAULT_HOST) -> int:
    """A port the OS considers free right now (bind to port 0 and read what it chose)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until_ready(
    endpoint_url: str, *, timeout: float, process: subprocess.Popen[str] | None = None
) -> None:
    """Poll the moto API until it answers 200; raise SandboxError on timeout or child exit."""
    deadline = time.monotonic() + timeout
    url = endpoint_url + READY_PATH
    last_problem = "no answer yet"
    while True:
        if process is not None and process.poll() is not None:
            code = process.returncode
            raise SandboxError(f"the sandbox exited with code {code} before answering")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SandboxError(
                f"the sandbox at {endpoint_url} did not answer GET {READY_PATH} within "
                f"{timeout:g} s (last problem: {last_problem}); raise startup_timeout if this "
                "machine is slow, or check what listens on that port"
            )
        try:
            status = _http_status(url, method="GET", timeout=min(_REQUEST_TIMEOUT, remaining))
            if status == 200:
                return
            last_problem = f"HTTP {status}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            # Refused, reset, timed out or not HTTP yet: try again until the deadline.
            last_problem = str(getattr(exc, "reason", exc))
        time.sleep(min(_POLL_INTERVAL, max(0.0, deadline - time.monotonic())))


def _start_on_port(
    host: str, port: int, startup_timeout: float, load_aws_managed_policies: bool
) -> SandboxServer:
    server = SandboxServer(_spawn(host, port, load_aws_managed_policies), host=host, port=port)
    try:
        wait_until_ready(server.endpoint_url, timeout=startup_timeout, process=server.process)
    except SandboxError as exc:
        server.stop()  # also drains the output, so the tail below is complete
        tail = server.output_tail()
        if any(marker in tail for marker in _PORT_IN_USE_MARKERS):
            raise PortInUseError(_port_in_use_message(host, port)) from None
        raise SandboxError(f"{exc}\n--- last output of the sandbox ---\n{tail}") from None
    except BaseException:
        server.stop()  # Ctrl-C (or SIGTERM turned into it) while waiting: leave no orphan
        raise
    return server


def _spawn(host: str, port: int, load_aws_managed_policies: bool) -> subprocess.Popen[str]:
    # Real AWS has the AWS-managed policies (AmazonEKSWorkerNodePolicy, ...); moto loads them only
    # when asked. It costs about half a second on the first IAM call, paid once per server.
    env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES=str(load_aws_managed_policies).lower())
    # The child imports `sandbox` and `provisioning` (the evaluator) from this checkout.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "sandbox.moto_app", "-H", host, "-p", str(port)]
    return subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )


def _start_output_reader(stream: IO[str] | None, sink: collections.deque[str]) -> threading.Thread:
    # The pipe must be drained all the time: moto logs every request, and a full pipe would
    # block the server. Only the tail is kept, for error messages.
    def drain(lines: Iterable[str]) -> None:
        for line in lines:
            sink.append(line)

    thread = threading.Thread(target=drain, args=(stream or (),), daemon=True)
    thread.start()
    return thread


def _http_status(url: str, *, method: str, timeout: float) -> int:
    if not url.startswith(("http://", "https://")):
        raise SandboxError(f"the sandbox endpoint must be an http(s) URL, not {url!r}")
    request = urllib.request.Request(url, method=method)  # noqa: S310 - scheme checked above
    try:
        with _DIRECT.open(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        # The server binds with SO_REUSEADDR too; without it, connections in TIME_WAIT from a
        # sandbox that just stopped would make a free port look busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(_port_in_use_message(host, port)) from None
            raise SandboxError(f"cannot bind {host}:{port}: {exc.strerror}") from exc


def _port_in_use_message(host: str, port: int) -> str:
    return (
        f"port {port} on {host} is already in use; stop what runs there or choose another port "
        "with SANDBOX_PORT"
    )


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
