"""Issue 13: the everyday pages stay as fast with 5,000 microservices as with 50.

The microservice list, the inventory (roles and keys) and the dashboard (a reviewer's and a
developer's), rendered by Django's test client in this process against PostgreSQL (database
`bench_pages`, dropped and created on start), with 50 and then 5,000 microservices, each with
an applied workspace, its apply run, a change request and an audit event; every other service is
drifted, has a failed plan and a request planned and waiting for review. So every dashboard
section (cut at 20 rows) is as full with 50 services as with 5,000: the pages show the same
number of rows and only the data behind them grows. The developer's team always owns the same 10
services. Target: p95(5,000) / p95(50) <= 1.5 for every page, queries per page equal.

    .venv/bin/python -m bench.pages [--repeat 60] [--large 5000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from typing import Any

from bench.common import load_average, log, machine_lines, table

DATABASE = "bench_pages"
TARGET_RATIO = 1.5
PAGES = [
    ("microservice list", "reviewer", "/services/"),
    ("inventory (roles)", "reviewer", "/inventory/"),
    ("inventory (keys)", "reviewer", "/inventory/?kind=key"),
    ("dashboard (reviewer)", "reviewer", "/"),
    ("dashboard (developer)", "developer", "/"),
]


def setup_django() -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "SECRET_KEY": "bench-pages-only",
            "DEBUG": "0",
            "SECURE_SSL_REDIRECT": "0",  # the test client speaks plain HTTP
            "ALLOWED_HOSTS": "testserver",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        }
    )
    for argv in (["dropdb", "--if-exists"], ["createdb"]):
        subprocess.run([*argv, "-h", "127.0.0.1", "-U", "postgres", DATABASE], check=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def people() -> dict[str, Any]:
    from django.contrib.auth.models import Group, User

    from provisioning.models import Cluster, Team
    from provisioning.permissions import SECURITY_GROUP

    reviewer = User.objects.create_user("rita")
    reviewer.groups.add(Group.objects.create(name=SECURITY_GROUP))
    developer = User.objects.create_user("alice")
    Team.objects.create(name="payments").members.add(developer)
    Cluster.objects.create(
        name="demo",
        environment="dev",
        account_id="123456789012",
        region="us-east-1",
        oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/"
        "oidc.eks.us-east-1.amazonaws.com/id/9A1B2C3D4E5F60718293A4B5C6D7E8F9",
    )
    return {"reviewer": reviewer, "developer": developer}


def grow_to(count: int, author: Any) -> None:
    """Add microservices (with their rows, in bulk) until there are ``count``."""
    from django.utils import timezone

    from provisioning import models as m

    have = m.Microservice.objects.count()
    cluster = m.Cluster.objects.get()
    teams = [m.Team.objects.get(name="payments")]
    teams += [m.Team.objects.get_or_create(name=f"team-{i:03d}")[0] for i in range(100)]
    now = timezone.now()
    services = m.Microservice.objects.bulk_create(
        m.Microservice(
            name=f"svc-{i:05d}",
            team=teams[0] if i < 10 else teams[1 + i % 100],
            namespace=f"ns-{i:05d}",
            service_accounts=[f"svc-{i:05d}"],
            created_by=author,
        )
        for i in range(have, count)
    )
    workspaces = m.Workspace.objects.bulk_create(
        m.Workspace(
            microservice=s,
            cluster=cluster,
            status="drifted" if i % 2 else "applied",
            role_arn=f"arn:aws:iam::123456789012:role/irsa/demo-{s.name}",
            kms_key_arn=f"arn:aws:kms:us-east-1:123456789012:key/{s.name}",
        )
        for i, s in enumerate(services, start=have)
    )
    m.Run.objects.bulk_create(
        m.Run(
            workspace=w,
            kind="apply",
            status="succeeded",
            outputs={"kms_key_arn": w.kms_key_arn},
            finished_at=now,
        )
        for w in workspaces
    )
    m.Run.objects.bulk_create(
        m.Run(workspace=w, kind="plan", status="failed", finished_at=now)
        for i, w in enumerate(workspaces, start=have)
        if i % 2
    )
    m.ChangeRequest.objects.bulk_create(
        m.ChangeRequest(
            microservice=s,
            kind="create",
            status="planned" if i % 2 else "applied",
            spec={},
            justification="bench",
            created_by=author,
        )
        for i, s in enumerate(services, start=have)
    )
    m.AuditEvent.objects.bulk_create(
        m.AuditEvent(
            actor_name="alice",
            action="microservice.registered",
            object_type="provisioning.microservice",
            object_id=str(s.pk),
        )
        for s in services
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(users: dict[str, Any], repeat: int) -> dict[str, dict[str, float]]:
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    clients = {}
    for role, user in users.items():
        clients[role] = Client()
        clients[role].force_login(user)
    samples: dict[str, list[float]] = {name: [] for name, _, _ in PAGES}
    queries: dict[str, int] = {}
    for name, role, url in PAGES:  # warm up, and count the queries once
        with CaptureQueriesContext(connection) as ctx:
            first = clients[role].get(url)
            assert first.status_code == 200, (url, first.status_code, first.get("Location"))
        queries[name] = len(ctx.captured_queries)
    for _ in range(repeat):  # pages interleaved, so a burst of load hits all of them alike
        for name, role, url in PAGES:
            start = time.perf_counter()
            response = clients[role].get(url)
            samples[name].append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
            reset_queries()
    return {
        name: {"p50": _pct(values, 50), "p95": _pct(values, 95), "queries": queries[name]}
        for name, values in samples.items()
    }


def _pct(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--large", type=int, default=5000)
    args = parser.parse_args()
    setup_django()
    users = people()
    before = load_average()
    log(f"load before: {before}")
    results = {}
    for count in (args.small, args.large):
        grow_to(count, users["developer"])
        log(f"{count} microservices: measuring")
        results[count] = measure(users, args.repeat)
    rows = []
    for name, _, _ in PAGES:
        small, large = results[args.small][name], results[args.large][name]
        ratio = large["p95"] / small["p95"]
        verdict = "ok" if ratio <= TARGET_RATIO and small["queries"] == large["queries"] else "FAIL"
        rows.append(
            [
                name,
                small["p50"],
                small["p95"],
                large["p50"],
                large["p95"],
                round(ratio, 2),
                f"{small['queries']} / {large['queries']}",
                verdict,
            ]
        )
    print("\n".join(machine_lines()))
    print(
        f"- load average before the first page: {before}, at the end: {load_average()}; "
        f"{args.repeat} requests per page\n"
    )
    header = [
        "page",
        f"p50 ms ({args.small})",
        f"p95 ms ({args.small})",
        f"p50 ms ({args.large})",
        f"p95 ms ({args.large})",
        "p95 ratio",
        "queries",
        "verdict",
    ]
    print(table(header, rows))


if __name__ == "__main__":
    main()
