"""Issue 12: the API's list and detail endpoints stay as fast with 5,000 microservices as with 50,
under a real WSGI server with concurrent clients.

gunicorn (2 workers x 4 threads) serves portal.wsgi against PostgreSQL (database `bench_api`,
dropped and created on start); 20 client threads send token-authenticated GETs, each cycling
through the endpoints, with 50 and then 5,000 microservices (the rows of bench/pages.py: an applied
workspace, its apply run, a change request and an audit event each). Queries per request are
counted in-process (Django's test client) at both sizes. Target: p95(5,000) / p95(50) <= 1.5 for
every endpoint, and the same number of queries.

    .venv/bin/python -m bench.api [--rounds 15] [--clients 20] [--large 5000]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import load_average, log, machine_lines, table

DATABASE = "bench_api"
TARGET_RATIO = 1.5
ENV = {
    "DJANGO_SETTINGS_MODULE": "portal.settings",
    "SECRET_KEY": "bench-api-only",
    "DEBUG": "0",
    # Plain HTTP on loopback: no redirect to HTTPS (a proxy terminates TLS in production).
    "SECURE_SSL_REDIRECT": "0",
    # Reads only, no AWS call: a sandbox address, so the start-up check (no real AWS without a
    # permissions boundary, portal/startup.py) lets the web app boot.
    "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
    # One reviewer's token sends every request: the per-user throttle would answer 429.
    "API_THROTTLE_USER": "1000000/min",
    "ALLOWED_HOSTS": "127.0.0.1,testserver",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
}


def endpoints() -> list[tuple[str, str]]:
    """(name, path): lists a page of 20, and details of rows that exist at both sizes."""
    from provisioning.models import ChangeRequest, Run

    change = ChangeRequest.objects.order_by("pk").first()
    run = Run.objects.order_by("pk").first()
    assert change is not None and run is not None
    return [
        ("microservices (list)", "/api/v1/microservices/?page_size=20"),
        ("microservices (team filter)", "/api/v1/microservices/?team=payments"),
        ("change requests (list)", "/api/v1/change-requests/?page_size=20"),
        ("runs (list)", "/api/v1/runs/?page_size=20"),
        ("inventory roles (list)", "/api/v1/inventory/roles/?page_size=20"),
        ("audit events (list)", "/api/v1/audit-events/?page_size=20"),
        ("microservice (detail)", "/api/v1/microservices/svc-00005/"),
        ("change request (detail)", f"/api/v1/change-requests/{change.pk}/"),
        ("run (detail)", f"/api/v1/runs/{run.pk}/"),
    ]


def setup_django() -> None:
    os.environ.update(ENV)
    for argv in (["dropdb", "--if-exists"], ["createdb"]):
        subprocess.run([*argv, "-h", "127.0.0.1", "-U", "postgres", DATABASE], check=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "portal.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "--threads", "4"],
        env={**os.environ, **ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("gunicorn did not start")


def load(base: str, token: str, paths: list[tuple[str, str]], clients: int, rounds: int) -> Any:
    """Each client thread sends every endpoint ``rounds`` times, interleaved; latencies in ms."""
    samples: dict[str, list[float]] = {name: [] for name, _ in paths}
    lock = threading.Lock()
    errors: list[str] = []

    def client(offset: int) -> None:
        for i in range(rounds * len(paths)):
            name, path = paths[(i + offset) % len(paths)]
            request = urllib.request.Request(base + path)  # noqa: S310 (local bench server)
            request.add_header("Authorization", f"Token {token}")
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
                    answer.read()
            except Exception as exc:  # recorded and reported: the run is then void
                errors.append(f"{path}: {exc}")
                continue
            with lock:
                samples[name].append((time.perf_counter() - start) * 1000)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return samples


def count_queries(user: Any, paths: list[tuple[str, str]]) -> dict[str, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    counts = {}
    for name, path in paths:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path).status_code == 200, path
        counts[name] = len(ctx.captured_queries)
    return counts


def _pct(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))], 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--large", type=int, default=5000)
    args = parser.parse_args()
    setup_django()
    from bench.pages import grow_to, people
    from provisioning.services.tokens import api_token_create

    users = people()
    token = api_token_create(actor=users["reviewer"], name="test")[1]
    port = free_port()
    results: dict[int, Any] = {}
    for count in (args.small, args.large):
        grow_to(count, users["developer"])
        paths = endpoints()
        server = start_gunicorn(port)  # fresh workers per size: no warm cache carried over
        try:
            log(f"{count} microservices: warming up, then {args.clients} clients")
            load(f"http://127.0.0.1:{port}", token, paths, 2, 1)
            samples = load(f"http://127.0.0.1:{port}", token, paths, args.clients, args.rounds)
        finally:
            server.terminate()
            server.wait(timeout=30)
        results[count] = (samples, count_queries(users["reviewer"], paths))
    report(args, paths, results)


def report(args: argparse.Namespace, paths: list[tuple[str, str]], results: Any) -> None:
    rows = []
    for name, _ in paths:
        (small, q_small), (large, q_large) = results[args.small], results[args.large]
        p95_small, p95_large = _pct(small[name], 95), _pct(large[name], 95)
        ratio = round(p95_large / p95_small, 2)
        ok = ratio <= TARGET_RATIO and q_small[name] == q_large[name]
        rows.append(
            [
                name,
                _pct(small[name], 50),
                p95_small,
                _pct(large[name], 50),
                p95_large,
                ratio,
                f"{q_small[name]} / {q_large[name]}",
                "ok" if ok else "FAIL",
            ]
        )
    print("\n".join(machine_lines()))
    print(
        f"- load average at the end: {load_average()}; gunicorn 2x4, {args.clients} clients, "
        f"{args.clients * args.rounds} requests per endpoint and size\n"
    )
    header = ["endpoint", f"p50 ms ({args.small})", f"p95 ms ({args.small})"]
    header += [f"p50 ms ({args.large})", f"p95 ms ({args.large})", "p95 ratio", "queries"]
    print(table([*header, "verdict"], rows))


if __name__ == "__main__":
    main()
