"""Lint any IAM policy file with the portal's rules; exit non-zero on a high finding.

For security teams' own policies as much as the portal's: no database, no AWS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from provisioning.analysis.findings import Finding, blocking, severity_counts
from provisioning.analysis.lint import lint_identity_policy, lint_key_policy, lint_trust_policy
from provisioning.iam.policies import WEB_IDENTITY_ACTION

KINDS = ("identity", "trust", "key")


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    raw = policy.get("Statement")
    raw = raw if isinstance(raw, list) else [raw]
    return [s for s in raw if isinstance(s, dict)]


def detect_kind(policy: dict[str, Any]) -> str:
    """Trust when a statement trusts a federated principal or assumes a web identity; key when
    statements name other principals; identity otherwise."""
    statements = _statements(policy)
    for statement in statements:
        principal = statement.get("Principal")
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if (isinstance(principal, dict) and "Federated" in principal) or any(
            str(a).lower() == WEB_IDENTITY_ACTION.lower() for a in actions
        ):
            return "trust"
    if any("Principal" in s or "NotPrincipal" in s for s in statements):
        return "key"
    return "identity"


def _load(path: Path) -> dict[str, Any]:
    try:
        policy = json.loads(path.read_text())
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"{path} is not valid JSON: {exc}.") from exc
    if not isinstance(policy, dict) or not _statements(policy):
        raise CommandError(
            f"{path} is not an IAM policy: expected an object with a 'Statement' list."
        )
    return policy


class Command(BaseCommand):
    help = "Lint an IAM policy file (identity, trust or KMS key policy); exits 1 on a high finding."
    # An offline tool (no AWS, no database): the deployment checks (e.g. "no real AWS without a
    # permissions boundary") are for the processes that act, not for a preview.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="path to the policy JSON file")
        parser.add_argument("--kind", choices=KINDS, help="policy kind (default: detected)")
        parser.add_argument(
            "--oidc-provider-arn", help="the cluster's OIDC provider the trust policy must name"
        )
        parser.add_argument("--role-arn", help="the only role a key policy may let use the key")
        parser.add_argument("--json", action="store_true", help="print findings as JSON")

    def handle(self, *args: Any, file: Path, **options: Any) -> None:
        policy = _load(file)
        kind = options["kind"] or detect_kind(policy)
        if kind == "trust":
            findings = lint_trust_policy(policy, oidc_provider_arn=options["oidc_provider_arn"])
        elif kind == "key":
            findings = lint_key_policy(policy, role_arn=options["role_arn"])
        else:
            findings = lint_identity_policy(policy)
        self._print(file, kind, findings, as_json=options["json"])
        high = blocking(findings)
        if high:
            raise CommandError(f"{len(high)} high finding(s) in {file}; fix them before use.")

    def _print(self, file: Path, kind: str, findings: list[Finding], *, as_json: bool) -> None:
        if as_json:
            document = {
                "file": str(file),
                "kind": kind,
                "findings": [f.to_dict() for f in findings],
                "counts": severity_counts(findings),
                "blocking": bool(blocking(findings)),
            }
            self.stdout.write(json.dumps(document, indent=2))
            return
        for f in findings:
            self.stdout.write(f"{f.rule} {f.severity:<6} {f.location}: {f.message}")
        counts = severity_counts(findings)
        summary = ", ".join(f"{n} {severity}" for severity, n in counts.items())
        self.stdout.write(f"{file} ({kind} policy): {len(findings)} finding(s): {summary}")
