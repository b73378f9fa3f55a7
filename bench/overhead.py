"""Issue 4: the portal's overhead on one workspace's plan + apply.

Portal: a plan Run then an apply Run through a real Celery worker (`run_enqueue` +
`wait_for_run`), timed from the first enqueue until both runs are final. Raw: `terraform init`,
`plan -out`, `apply` of the same rendered directory with the same backend config and environment.
Fresh state for every repetition; the two are interleaved; destroys are not timed.

    .venv/bin/python -m bench.overhead [--repeat 5]
"""

from __future__ import annotations

import argparse

from bench.common import (
    REFERENCE_RESOURCES,
    RawTerraform,
    Stack,
    load_average,
    log,
    machine_lines,
    median,
    table,
    timed,
    unique,
)

TARGET_RATIO = 1.15
POLL = 0.1  # wait_for_run's poll interval: the timing is at most this late


def portal_once(stack: Stack) -> dict[str, float]:
    from provisioning.models import RunKind, RunStatus
    from provisioning.services.runs import run_enqueue, wait_for_run

    name = unique("ovp")
    workspace = stack.workspace_row(name)
    spec = stack.spec_dict(name, REFERENCE_RESOURCES)

    def plan_and_apply():
        plan = run_enqueue(workspace=workspace, kind=RunKind.PLAN, spec=spec)
        plan = wait_for_run(plan.pk, poll=POLL)
        assert plan.status == RunStatus.SUCCEEDED, plan.error
        apply = run_enqueue(workspace=workspace, kind=RunKind.APPLY, spec=spec, plan_run=plan)
        apply = wait_for_run(apply.pk, poll=POLL)
        assert apply.status == RunStatus.SUCCEEDED, apply.error
        return plan, apply

    total, (plan, apply) = timed(plan_and_apply)
    workspace.refresh_from_db()
    verification = workspace.verification or {}
    log(
        f"verification: {workspace.verification_status or 'none'}, "
        f"{len(verification.get('probes', []))} probes"
    )
    destroy = wait_for_run(run_enqueue(workspace=workspace, kind=RunKind.DESTROY, spec=spec).pk)
    assert destroy.status == RunStatus.SUCCEEDED, destroy.error
    return {
        "total": total,
        "plan_queue": (plan.started_at - plan.created_at).total_seconds(),
        "plan_run": (plan.finished_at - plan.started_at).total_seconds(),
        "apply_queue": (apply.started_at - apply.created_at).total_seconds(),
        "apply_run": (apply.finished_at - apply.started_at).total_seconds(),
    }


def raw_once(stack: Stack) -> dict[str, float]:
    from provisioning.terraform.context import render_files

    name = unique("ovr")
    raw = RawTerraform(
        render_files(stack.spec(name, REFERENCE_RESOURCES)),
        f"bench_{name}",
        stack.work_dir / "raw" / name,
    )
    try:
        init, _ = timed(raw.init)
        plan, _ = timed(raw.plan)
        # Not in the total: what printing the saved plan as JSON costs Terraform, the one
        # command the portal's plan run adds (the review is made from it).
        show, _ = timed(raw.show_json)
        apply, _ = timed(raw.apply)
        raw.destroy()
    finally:
        raw.cleanup()
    return {
        "total": init + plan + apply,
        "init": init,
        "plan": plan,
        "apply": apply,
        "show_json": show,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with Stack("overhead", broker=True) as stack:
        from provisioning.terraform.context import toolchain

        print("\n".join(machine_lines([toolchain().binary])))
        stack.start_workers(1)
        portal: list[dict[str, float]] = []
        raw: list[dict[str, float]] = []
        for i in range(args.repeat):
            pair = [("portal", portal_once, portal), ("raw", raw_once, raw)]
            for label, measure, into in pair if i % 2 == 0 else reversed(pair):
                into.append(measure(stack))
                log(f"rep {i + 1} {label}: total {into[-1]['total']:.2f} s")
        ratio = median(p["total"] / r["total"] for p, r in zip(portal, raw, strict=True))
        p_total, r_total = median(p["total"] for p in portal), median(r["total"] for r in raw)
        print(f"- load average at end: {load_average()}\n")
        print(
            table(
                ["path", "runs", "median s", "min s", "max s"],
                [
                    [
                        "portal (Celery plan run + apply run)",
                        len(portal),
                        p_total,
                        min(p["total"] for p in portal),
                        max(p["total"] for p in portal),
                    ],
                    [
                        "raw terraform init/plan/apply",
                        len(raw),
                        r_total,
                        min(r["total"] for r in raw),
                        max(r["total"] for r in raw),
                    ],
                ],
            )
        )
        verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
        print(
            f"\nportal / raw: median of per-pair ratios {ratio:.2f}, ratio of medians "
            f"{p_total / r_total:.2f} (target <= {TARGET_RATIO}: {verdict})"
        )
        with_show = median(
            p["total"] / (r["total"] + r["show_json"]) for p, r in zip(portal, raw, strict=True)
        )
        print(
            f"portal / (raw + `show -json` of the plan): median of per-pair ratios "
            f"{with_show:.2f}; `show -json` alone is {median(r['show_json'] for r in raw):.2f} s, "
            f"{median(r['show_json'] / r['total'] for r in raw):.1%} of raw\n"
        )
        print(
            table(
                ["portal part (median s)", "value"],
                [
                    [k, median(p[k] for p in portal)]
                    for k in ("plan_queue", "plan_run", "apply_queue", "apply_run")
                ],
            )
        )
        print()
        print(
            table(
                ["raw part (median s)", "value"],
                [[k, median(r[k] for r in raw)] for k in ("init", "plan", "show_json", "apply")],
            )
        )


if __name__ == "__main__":
    main()
