"""Issue 4: workspaces provisioned per minute with 1, 2 and 4 Celery worker processes.

Per measurement N fresh workspaces (reference spec) are provisioned at once: each gets a plan Run
and, as soon as that plan succeeds, its apply Run (`run_enqueue` + `wait_for_run`, one driver
thread per workspace). Timed from the first enqueue until the last apply is final. Every worker
is `--concurrency 1`; workers start before the clock and the destroys after it are not timed.

    .venv/bin/python -m bench.throughput [--workspaces 8] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import (
    REFERENCE_RESOURCES,
    Stack,
    load_average,
    log,
    machine_lines,
    median,
    table,
    unique,
)

POLL = 0.2
TIMEOUT = 3600


def provision(workspace, spec: dict) -> None:
    from django.db import connection

    from provisioning.models import RunKind, RunStatus
    from provisioning.services.runs import run_enqueue, wait_for_run

    try:
        plan = run_enqueue(workspace=workspace, kind=RunKind.PLAN, spec=spec)
        plan = wait_for_run(plan.pk, poll=POLL, timeout=TIMEOUT)
        assert plan.status == RunStatus.SUCCEEDED, plan.error
        apply = run_enqueue(workspace=workspace, kind=RunKind.APPLY, spec=spec, plan_run=plan)
        apply = wait_for_run(apply.pk, poll=POLL, timeout=TIMEOUT)
        assert apply.status == RunStatus.SUCCEEDED, apply.error
    finally:
        connection.close()  # this driver thread's own connection


def destroy(workspace, spec: dict) -> None:
    from django.db import connection

    from provisioning.models import RunKind, RunStatus
    from provisioning.services.runs import run_enqueue, wait_for_run

    try:
        run = run_enqueue(workspace=workspace, kind=RunKind.DESTROY, spec=spec)
        run = wait_for_run(run.pk, poll=POLL, timeout=TIMEOUT)
        assert run.status == RunStatus.SUCCEEDED, run.error
    finally:
        connection.close()


def measure(stack: Stack, count: int) -> float:
    """Seconds to plan + apply `count` fresh workspaces with the running workers."""
    names = [unique("tp") for _ in range(count)]
    jobs = [(stack.workspace_row(n), stack.spec_dict(n, REFERENCE_RESOURCES)) for n in names]
    with ThreadPoolExecutor(count) as pool:
        start = time.perf_counter()
        for done in [pool.submit(provision, w, s) for w, s in jobs]:
            done.result()
        elapsed = time.perf_counter() - start
        for done in [pool.submit(destroy, w, s) for w, s in jobs]:
            done.result()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with Stack("throughput", broker=True) as stack:
        from provisioning.terraform.context import toolchain

        print("\n".join(machine_lines([toolchain().binary])))
        times: dict[int, list[float]] = {w: [] for w in args.workers}
        loads: dict[int, list[str]] = {w: [] for w in args.workers}
        for i in range(args.repeat):  # rounds, in alternating order, so load drifts even out
            for workers in args.workers if i % 2 == 0 else reversed(args.workers):
                stack.start_workers(workers)
                loads[workers].append(load_average())
                times[workers].append(measure(stack, args.workspaces))
                stack.stop_workers()
                log(
                    f"{workers} worker(s): {args.workspaces} workspaces in "
                    f"{times[workers][-1]:.1f} s (load before {loads[workers][-1]})"
                )
        rows = []
        for workers in args.workers:
            seconds = median(times[workers])
            rate = args.workspaces / seconds * 60
            rows.append(
                [
                    workers,
                    args.workspaces,
                    len(times[workers]),
                    seconds,
                    rate,
                    ", ".join(loads[workers]),
                ]
            )
        base = rows[0][4]
        for row in rows:
            row.append(f"{row[4] / base:.2f}x")
        print(f"- load average at end: {load_average()}\n")
        print(
            table(
                [
                    "workers",
                    "workspaces",
                    "runs",
                    "median s",
                    "workspaces/min",
                    "load before each (1/5/15)",
                    "speed-up",
                ],
                rows,
            )
        )


if __name__ == "__main__":
    main()
