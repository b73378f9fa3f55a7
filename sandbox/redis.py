"""A private redis-server for tests and benchmarks: never the machine's own Redis on 6379.

It binds 127.0.0.1 on a free port (or the one given, so that a stopped broker can come back at
the same address), keeps nothing on disk, and is a child process that `stop` ends.
"""

from __future__ import annotations

import subprocess
import time

from sandbox.server import find_free_port


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or find_free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> RedisServer:
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        argv += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._ping() == "PONG":
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the private redis-server on port {self.port} did not start")

    def _ping(self) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    def shutdown_nosave(self, timeout: float = 10) -> None:
        """Stop as an operator's `SHUTDOWN NOSAVE` would: clients see their sockets close and every
        key (queued and unacknowledged messages included) is gone when the server comes back."""
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "nosave"],
            capture_output=True,
            check=False,
        )
        if self.process is not None:
            self.process.wait(timeout=timeout)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                self.process.wait(timeout=10)
            self.process = None
