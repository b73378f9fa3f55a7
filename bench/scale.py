"""Issue 4: does one workspace's plan stay fast when many workspaces share the sandbox and the
pg state database? And, for contrast, how slow is one root module holding every service?

1. Apply a target workspace (small spec: one read table), time its init + plan (fresh working
   directory each time, median of --repeat) with only it applied.
2. Apply --count - 1 more workspaces (`init` + `apply -auto-approve`, a pool of --threads), each
   a distinct microservice (stops starting new ones once --apply-budget minutes have passed).
3. Time the target's init + plan again: the ratio after / before is the result.
4. Contrast: reset the sandbox, apply the same services as ONE root module (the rendered
   workspace used as a child module with for_each over a map of services, user values in
   terraform.tfvars.json), then time init + plan of that root (median of --mono-repeat).

    .venv/bin/python -m bench.scale [--count 200] [--threads 6] [--apply-budget 45]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import (
    SMALL_RESOURCES,
    RawTerraform,
    Stack,
    load_average,
    log,
    machine_lines,
    median,
    quiet,
    table,
    timed,
    unique,
)

TARGET_RATIO = 1.1


def populate_workspace(stack: Stack, name: str) -> None:
    """One more applied workspace, made the quickest way: `init` + `apply -auto-approve`.

    How the others got applied does not matter to the measurement, only that their state and
    AWS objects exist; the portal's plan + show + saved-plan apply would cost CPU for nothing.
    """
    from provisioning.terraform.context import pg_create_state_row, render_files, toolchain

    key = f"bench_{name}"
    raw = RawTerraform(
        render_files(stack.spec(name, SMALL_RESOURCES)), key, stack.work_dir / "raw" / name
    )
    try:
        raw.init()
        pg_create_state_row(key, toolchain().version)  # as the portal does: no creation lock
        raw.run("apply", "-input=false", "-auto-approve", "-lock-timeout=60s")
    finally:
        raw.cleanup()


def apply_workspace(stack: Stack, name: str) -> int:
    """init + plan + apply one workspace through open_workspace; the number of resources."""
    from provisioning.terraform.context import open_workspace

    runner = open_workspace(
        spec=stack.spec(name, SMALL_RESOURCES), state_key=f"bench_{name}", sink=quiet
    )
    try:
        runner.init()
        plan = runner.plan()
        runner.apply(plan.plan_file)
    finally:
        runner.cleanup()
    return len(plan.summary["add"])


def plan_workspace(stack: Stack, name: str) -> dict[str, float]:
    from provisioning.terraform.context import open_workspace

    runner = open_workspace(
        spec=stack.spec(name, SMALL_RESOURCES), state_key=f"bench_{name}", sink=quiet
    )
    try:
        init, _ = timed(runner.init)
        plan_time, plan = timed(runner.plan)
    finally:
        runner.cleanup()
    assert not plan.has_changes, plan.summary
    return {"init": init, "plan": plan_time, "total": init + plan_time}


def apply_many(stack: Stack, names: list[str], *, threads: int, budget: float) -> list[str]:
    """Apply workspaces with a thread pool; none is started after `budget` seconds."""
    deadline = time.monotonic() + budget

    def job(name: str) -> str | None:
        if time.monotonic() > deadline:
            return None
        try:
            populate_workspace(stack, name)
        except Exception as exc:
            log(f"{name} failed: {str(exc)[:300]}")
            return None
        return name

    applied = []
    with ThreadPoolExecutor(threads) as pool:
        for name in pool.map(job, names):
            if name is not None:
                applied.append(name)
                if len(applied) % 10 == 0:
                    log(f"{len(applied)} workspaces applied (load {load_average()})")
    return applied


# --- one root module for every service -------------------------------------------------------


def mono_files(stack: Stack, names: list[str], module_dir: Path, workdir: Path) -> dict[str, str]:
    """A root calling the rendered workspace (minus provider and backend) once per service."""
    from provisioning.terraform.context import MODULES_DIR, render_files

    rendered = [render_files(stack.spec(n, SMALL_RESOURCES)) for n in names]
    main = json.loads(rendered[0]["main.tf.json"])
    variables = {k: v for k, v in main["variable"].items() if k != "sandbox_endpoint"}
    child = {
        **{k: v for k, v in main.items() if k != "provider"},
        "terraform": {k: v for k, v in main["terraform"].items() if k != "backend"},
        "variable": variables,
    }
    module_dir.mkdir(parents=True)
    (module_dir / "main.tf.json").write_text(json.dumps(child, indent=2))
    (module_dir / "modules").symlink_to(MODULES_DIR, target_is_directory=True)
    fields = ", ".join(f"{k} = {v['type']}" for k, v in sorted(variables.items()))
    root = {
        "terraform": main["terraform"],  # required providers + the empty pg backend block
        "variable": {
            "region": {"type": "string"},
            "sandbox_endpoint": {"type": "string"},
            "services": {"type": f"map(object({{{fields}}}))"},
        },
        "provider": main["provider"],
        "module": {
            "svc": {
                "source": os.path.relpath(module_dir, workdir),
                "for_each": "${var.services}",
                **{k: f"${{each.value.{k}}}" for k in variables},
            }
        },
    }
    services = {}
    for name, files in zip(names, rendered, strict=True):
        values = json.loads(files["terraform.tfvars.json"])
        endpoint = values.pop("sandbox_endpoint")
        services[name] = values
    tfvars = {"region": stack.demo.region, "sandbox_endpoint": endpoint, "services": services}
    return {"main.tf.json": json.dumps(root, indent=2), "terraform.tfvars.json": json.dumps(tfvars)}


def mono_runner(stack: Stack, names: list[str], module_dir: Path, state_key: str):
    from django.conf import settings

    from provisioning.terraform import context
    from provisioning.terraform.runner import WorkspaceRunner

    workdir = context.work_root() / "runs" / f"mono-{uuid.uuid4().hex[:8]}"
    chain = context.toolchain()
    return WorkspaceRunner(
        toolchain=chain,
        workdir=workdir,
        files=mono_files(stack, names, module_dir, workdir),
        modules_dir=context.MODULES_DIR,
        backend=context.workspace_backend(state_key),
        extra_env=context.aws_env(),
        sink=quiet,
        timeout=settings.CELERY_TASK_SOFT_TIME_LIMIT,
        lock_timeout=settings.TERRAFORM_LOCK_TIMEOUT,
        prepare_state=lambda: context.pg_create_state_row(state_key, chain.version),
    )


def mono_plan(stack: Stack, names: list[str], state_key: str) -> dict[str, float]:
    module_dir = stack.work_dir / f"mono-module-{uuid.uuid4().hex[:8]}"
    runner = mono_runner(stack, names, module_dir, state_key)
    try:
        init, _ = timed(runner.init)
        plan_time, plan = timed(runner.plan)
    finally:
        runner.cleanup()
    assert not plan.has_changes, plan.summary
    return {"init": init, "plan": plan_time, "total": init + plan_time}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="workspaces applied in all")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mono-repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument(
        "--apply-budget",
        type=float,
        default=45.0,
        help="minutes after which no further workspace apply is started",
    )
    args = parser.parse_args()
    started = time.monotonic()
    with Stack("scale") as stack:
        from provisioning.terraform.context import toolchain

        print("\n".join(machine_lines([toolchain().binary])))
        target = unique("target")
        resources = apply_workspace(stack, target)
        log(f"target {target} applied ({resources} resources)")
        load_before = load_average()
        before = [plan_workspace(stack, target) for _ in range(args.repeat)]
        log(f"before: {[round(b['total'], 2) for b in before]}")

        others = [unique("sc") for _ in range(args.count - 1)]
        apply_time, applied = timed(
            lambda: apply_many(stack, others, threads=args.threads, budget=args.apply_budget * 60)
        )
        total_applied = 1 + len(applied)
        log(f"{len(applied)} more workspaces applied in {apply_time:.0f} s")

        load_after = load_average()
        after = [plan_workspace(stack, target) for _ in range(args.repeat)]
        log(f"after: {[round(a['total'], 2) for a in after]}")

        # Contrast: the same services in one root, in a sandbox holding only them.
        stack.sandbox.reset()
        from sandbox.demo import create_demo_aws

        create_demo_aws(stack.sandbox.endpoint_url, region=stack.demo.region)
        services = [target, *applied]
        mono_key = f"bench_mono_{uuid.uuid4().hex[:8]}"
        module_dir = stack.work_dir / "mono-module-apply"
        runner = mono_runner(stack, services, module_dir, mono_key)
        try:
            mono_init, _ = timed(runner.init)
            mono_first_plan, plan = timed(runner.plan)
            mono_apply, _ = timed(lambda: runner.apply(plan.plan_file))
        finally:
            runner.cleanup()
        mono_resources = len(plan.summary["add"])
        log(f"mono root: {mono_resources} resources applied in {mono_apply:.0f} s")
        load_mono = load_average()
        mono = [mono_plan(stack, services, mono_key) for _ in range(args.mono_repeat)]
        log(f"mono plans: {[round(m['total'], 2) for m in mono]}")

        ratio = median(a["total"] for a in after) / median(b["total"] for b in before)
        verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
        print(f"- load average at end: {load_average()}")
        print(
            f"- wall time: {(time.monotonic() - started) / 60:.1f} min; workspaces applied: "
            f"{total_applied} of {args.count} asked (apply phase {apply_time / 60:.1f} min, "
            f"{args.threads} threads, budget {args.apply_budget:g} min)\n"
        )

        def row(label: str, runs: list[dict[str, float]], load: str) -> list:
            return [
                label,
                len(runs),
                median(r["init"] for r in runs),
                median(r["plan"] for r in runs),
                median(r["total"] for r in runs),
                load,
            ]

        header = [
            "one workspace (" + str(resources) + " resources)",
            "runs",
            "init s",
            "plan s",
            "init+plan s",
            "load before",
        ]
        print(
            table(
                header,
                [
                    row("1 workspace applied", before, load_before),
                    row(f"{total_applied} workspaces applied", after, load_after),
                ],
            )
        )
        print(
            f"\nafter / before (init+plan medians): {ratio:.2f} "
            f"(target <= {TARGET_RATIO}: {verdict})\n"
        )
        print(
            table(
                [
                    "single root module",
                    "services",
                    "resources",
                    "init s",
                    "plan s",
                    "init+plan s",
                    "load before",
                ],
                [
                    [
                        "first plan + apply (once)",
                        len(services),
                        mono_resources,
                        mono_init,
                        mono_first_plan,
                        f"apply {mono_apply:.1f} s",
                        "-",
                    ],
                    [
                        f"plan, median of {len(mono)}",
                        len(services),
                        mono_resources,
                        median(m["init"] for m in mono),
                        median(m["plan"] for m in mono),
                        median(m["total"] for m in mono),
                        load_mono,
                    ],
                ],
            )
        )


if __name__ == "__main__":
    main()
