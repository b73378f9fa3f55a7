"""Preview the resources and the three policies a spec file would produce, with their lint
findings and access matrix (no AWS, no database)."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from provisioning.analysis.lint import lint_policies
from provisioning.analysis.matrix import access_matrix
from provisioning.iam.policies import render_policies
from provisioning.iam.spec import SpecError, parse_workspace_spec


class Command(BaseCommand):
    help = "Print the IAM/KMS policies for a workspace spec file (format: docs/spec.md)."
    # An offline tool (no AWS, no database): the deployment checks (e.g. "no real AWS without a
    # permissions boundary") are for the processes that act, not for a preview.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("spec", type=Path, help="path to the spec JSON file")
        parser.add_argument(
            "--kms-key-arn",
            default=None,
            help="the workspace key's ARN once it exists (else a placeholder)",
        )

    def handle(self, *args, spec: Path, kms_key_arn: str | None, **options) -> None:
        try:
            data = json.loads(spec.read_text())
        except OSError as exc:
            raise CommandError(f"Cannot read {spec}: {exc.strerror}.") from exc
        except json.JSONDecodeError as exc:
            raise CommandError(f"{spec} is not valid JSON: {exc}.") from exc
        try:
            workspace = parse_workspace_spec(data)
        except SpecError as exc:
            lines = [
                f"  {path or '(spec)'}: {message}"
                for path, messages in exc.errors.items()
                for message in messages
            ]
            raise CommandError(f"{spec} is not a valid spec:\n" + "\n".join(lines)) from exc
        document = render_policies(workspace, key_arn=kms_key_arn)
        findings = lint_policies(document, oidc_provider_arn=workspace.cluster.oidc_provider_arn)
        document["findings"] = [f.to_dict() for f in findings]
        document["matrix"] = access_matrix(workspace, document).to_dict()
        self.stdout.write(json.dumps(document, indent=2))
