"""Issue 9: the verification step's time per workspace, live (pod-like child processes probing
the sandbox with STS credentials) and on the simulator path (role read back, IAM's simulator).

Workspaces are applied once with Terraform (not timed); then each is verified `--repeat` times in
both modes, with the other workspaces as its applied neighbours (their tables, buckets and keys
are probed as denied).

    .venv/bin/python -m bench.verification [--workspaces 3] [--repeat 3]
"""

from __future__ import annotations

import argparse

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


def apply_workspace(stack: Stack) -> object:
    from provisioning.models import RunKind, RunStatus
    from provisioning.services.runs import run_enqueue, wait_for_run

    name = unique("ver")
    workspace = stack.workspace_row(name)
    spec = stack.spec_dict(name, REFERENCE_RESOURCES)
    plan = wait_for_run(run_enqueue(workspace=workspace, kind=RunKind.PLAN, spec=spec).pk)
    assert plan.status == RunStatus.SUCCEEDED, plan.error
    apply = run_enqueue(workspace=workspace, kind=RunKind.APPLY, spec=spec, plan_run=plan)
    apply = wait_for_run(apply.pk, timeout=600)
    assert apply.status == RunStatus.SUCCEEDED, apply.error
    workspace.refresh_from_db()
    return workspace


def verify(workspace: object, *, mint_url: str) -> tuple[float, dict]:
    from django.conf import settings

    from provisioning.verification.services import workspace_verify

    settings.IRSA_TOKEN_MINT_URL = mint_url
    return timed(lambda: workspace_verify(workspace=workspace))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with Stack("verification", broker=True) as stack:
        from provisioning.terraform.context import toolchain

        print("\n".join(machine_lines([toolchain().binary])))
        mint_url = f"{stack.sandbox.endpoint_url}/_sandbox/oidc/token"
        stack.start_workers(1)  # verification off in the worker: only the benchmark verifies
        workspaces = []
        for _ in range(args.workspaces):
            workspaces.append(apply_workspace(stack))
            log(f"applied {workspaces[-1]}")
        rows = []
        for mode, url in (("live", mint_url), ("simulated", "")):
            for index, workspace in enumerate(workspaces):
                times, probes, failed = [], 0, 0
                for _ in range(args.repeat):
                    seconds, result = verify(workspace, mint_url=url)
                    times.append(seconds)
                    probes, failed = len(result["probes"]), len(result["failed"])
                    for probe in result["probes"]:
                        if not probe["ok"]:
                            log(
                                f"  failed {probe['id']}: {probe['expected']} -> "
                                f"{probe['actual']} {probe['detail']}"
                            )
                rows.append([mode, index, probes, failed, median(times), min(times), max(times)])
                log(f"{mode} {workspace}: {median(times):.2f} s, {probes} probes")
        print(f"- load average at end: {load_average()}\n")
        print(table(["mode", "workspace", "probes", "failed", "median s", "min s", "max s"], rows))


if __name__ == "__main__":
    import os

    os.environ["VERIFY_AFTER_APPLY"] = "0"
    main()
