"""Issue 14: how many drift checks one worker core runs per hour.

A drift check is what a drift run does: a fresh working directory, ``terraform init``, ``plan``
(refreshing every resource of the workspace against the sandbox) and ``show -json``, through
``open_workspace``. ``--workspaces`` workspaces with the small spec (one read table: 9 resources)
are applied first; then ``--checks`` drift checks are run round-robin over them, once with one
checker thread and once with as many threads as the machine has cores. Reported: wall time and
CPU time (this process and its Terraform children) per check, and checks per core per hour at
full concurrency (checks / wall hours / cores) — the figure the capacity note in docs/deploy.md
divides into.

    .venv/bin/python -m bench.drift [--workspaces 4] [--checks 12]
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle, islice

from bench.common import Stack, load_average, log, machine_lines, median, table, unique
from bench.scale import apply_workspace, plan_workspace


def cpu_seconds() -> float:
    """User + system time of this process and its waited-for children (Terraform)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def run_checks(stack: Stack, names: list[str], *, checks: int, threads: int) -> dict[str, float]:
    order = list(islice(cycle(names), checks))
    cpu_before, started = cpu_seconds(), time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        singles = [r["total"] for r in pool.map(lambda n: plan_workspace(stack, n), order)]
    wall = time.monotonic() - started
    cpu = cpu_seconds() - cpu_before
    return {
        "threads": threads,
        "checks": checks,
        "wall": wall,
        "median_check": median(singles),
        "cpu_per_check": cpu / checks,
        "per_hour": checks / wall * 3600,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=4)
    parser.add_argument("--checks", type=int, default=12)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with Stack("drift") as stack:
        from provisioning.terraform.context import toolchain

        print("\n".join(machine_lines([toolchain().binary])))
        names = [unique("drift") for _ in range(args.workspaces)]
        for name in names:
            apply_workspace(stack, name)
        log(f"{len(names)} workspaces applied; load {load_average()}")
        rows = []
        for threads in (1, cores):
            load = load_average()
            result = run_checks(stack, names, checks=args.checks, threads=threads)
            log(f"{threads} thread(s): {result}")
            rows.append(
                [
                    threads,
                    result["checks"],
                    f"{result['wall']:.1f}",
                    f"{result['median_check']:.2f}",
                    f"{result['cpu_per_check']:.2f}",
                    f"{result['per_hour']:.0f}",
                    f"{result['per_hour'] / threads:.0f}",
                    load,
                ]
            )
        print(
            table(
                [
                    "checkers",
                    "checks",
                    "wall s",
                    "median check s",
                    "CPU s / check",
                    "checks / hour",
                    "per core / hour",
                    "load before",
                ],
                rows,
            )
        )
        print(f"- load average at end: {load_average()}; cores: {cores}")


if __name__ == "__main__":
    main()
