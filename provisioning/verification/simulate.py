"""The proof where the worker cannot mint a pod's token (real AWS): read the role back and ask IAM.

The trust policy as IAM holds it is evaluated with the portal's evaluator for a listed service
account, an unlisted one and one in another namespace; every access-matrix row goes through
``iam:SimulatePrincipalPolicy`` against the role as it is (attached and inline policies and the
permissions boundary, which the simulator applies itself), with the key policy as the resource
policy for KMS rows. IAM is eventually consistent, so mismatches are retried a bounded number of
times before they count.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from provisioning.analysis.evaluator import evaluate
from provisioning.aws import AccountSession, error_code
from provisioning.iam.policies import STS_AUDIENCE, WEB_IDENTITY_ACTION
from provisioning.iam.spec import WorkspaceSpec
from provisioning.verification import probes as p

RETRY_DELAYS_S = (2.0, 4.0, 8.0)
SIMULATOR_DECISIONS = {"allowed": "allowed", "explicitDeny": "denied", "implicitDeny": "denied"}


def read_role(*, role_arn: str, aws: AccountSession) -> dict[str, Any]:
    """The role as IAM holds it: trust policy, boundary, attached and inline documents."""
    iam = aws.client("iam")
    name = role_arn.rsplit("/", 1)[-1]
    role = iam.get_role(RoleName=name)["Role"]
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    inline = iam.list_role_policies(RoleName=name)["PolicyNames"]
    boundary_arn = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn", "")
    return {
        "trust": _document(role["AssumeRolePolicyDocument"]),
        "attached": {a["PolicyArn"]: managed_document(iam, a["PolicyArn"]) for a in attached},
        "inline": {
            n: _document(iam.get_role_policy(RoleName=name, PolicyName=n)["PolicyDocument"])
            for n in inline
        },
        "boundary_arn": boundary_arn,
    }


def managed_document(iam: Any, arn: str) -> dict[str, Any]:
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return _document(
        iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    )


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return json.loads(urllib.parse.unquote(value))
    return dict(value)


def trust_records(
    spec: WorkspaceSpec, *, role_arn: str, trust: Mapping[str, Any]
) -> list[dict[str, Any]]:
    issuer = spec.cluster.oidc_issuer
    records = []
    for probe in p.plan_trust_probes(
        namespace=spec.namespace, service_accounts=spec.service_accounts
    ):
        context = {
            f"{issuer}:sub": p.subject(probe.namespace, probe.sa),
            f"{issuer}:aud": STS_AUDIENCE,
        }
        decision = evaluate(
            [trust],
            action=WEB_IDENTITY_ACTION,
            resource=role_arn,
            principal=spec.cluster.oidc_provider_arn,
            context=context,
        )
        outcome = "allowed" if decision.allowed else "denied"
        if decision.unevaluated_conditions:
            outcome = "error"
        detail = decision.statement or ""
        if decision.unevaluated_conditions:
            detail = "not evaluated: " + "; ".join(decision.unevaluated_conditions)
        pod = {
            "assumed": outcome == "allowed",
            "assume": {"outcome": outcome, "code": "", "message": detail},
        }
        records.append(p.interpret_trust(probe, role_arn=role_arn, pod=pod))
    return records


def simulate_rows(
    rows: Sequence[p.MatrixRowLike],
    *,
    role_arn: str,
    aws: AccountSession,
    key_policies: Mapping[str, str],
) -> list[dict[str, Any]]:
    iam = aws.client("iam")
    records = []
    for row in rows:
        kwargs: dict[str, Any] = {
            "PolicySourceArn": role_arn,
            "ActionNames": [row.action],
            "ResourceArns": [row.resource],
        }
        entries = _context_entries(row.context or {})
        if entries:
            kwargs["ContextEntries"] = entries
        if row.kind == "kms_key" and row.resource in key_policies:
            kwargs["ResourcePolicy"] = key_policies[row.resource]
        result = iam.simulate_principal_policy(**kwargs)["EvaluationResults"][0]
        decision = result["EvalDecision"]
        outcome = SIMULATOR_DECISIONS.get(decision, "error")
        statements = [s.get("SourcePolicyId", "") for s in result.get("MatchedStatements", [])]
        probe = p.Probe(
            p.probe_id(
                "simulator",
                row.category,
                row.action,
                row.resource,
                str((row.context or {}).get("kms:ViaService", "")),
            ),
            "simulator",
            row.category,
            row.kind,
            row.action,
            row.resource,
            row.expected,
            "",
            {},
        )
        record = p.interpret(
            probe, {"outcome": outcome, "code": decision, "message": ", ".join(statements)}
        )
        records.append(record)
    return records


def _context_entries(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    entries = []
    for key, value in sorted(context.items()):
        values = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
        entries.append(
            {
                "ContextKeyName": key,
                "ContextKeyValues": values,
                "ContextKeyType": "stringList" if len(values) > 1 else "string",
            }
        )
    return entries


def key_policies(rows: Sequence[p.MatrixRowLike], *, aws: AccountSession) -> dict[str, str]:
    kms = aws.client("kms")
    found: dict[str, str] = {}
    for arn in sorted({r.resource for r in rows if r.kind == "kms_key"}):
        try:
            found[arn] = kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]
        except Exception as exc:  # a missing key policy: simulate without it
            if error_code(exc) not in ("NotFoundException", "AccessDeniedException"):
                raise
    return found


def verify_simulated(
    *,
    spec: WorkspaceSpec,
    role_arn: str,
    rows: Sequence[p.MatrixRowLike],
    aws: AccountSession,
) -> dict[str, Any]:
    started = time.monotonic()
    policies = key_policies(rows, aws=aws)
    records: list[dict[str, Any]] = []
    for delay in (*RETRY_DELAYS_S, None):
        role = _read_role_retrying(role_arn=role_arn, aws=aws)
        records = trust_records(spec, role_arn=role_arn, trust=role["trust"])
        records += simulate_rows(rows, role_arn=role_arn, aws=aws, key_policies=policies)
        if not _propagation_pending(records) or delay is None:
            break
        time.sleep(delay)  # IAM propagation: a policy just attached or detached may lag
    result = p.summarize(records, mode="simulated", duration_s=time.monotonic() - started)
    result["role"] = {
        "attached": sorted(role["attached"]),
        "inline": sorted(role["inline"]),
        "boundary": role["boundary_arn"],
    }
    return result


def _propagation_pending(records: list[dict[str, Any]]) -> bool:
    """A grant just applied may not be visible yet; an extra grant is not a propagation lag."""
    return any(r["expected"] == "allowed" and r["actual"] != "allowed" for r in records)


def _read_role_retrying(*, role_arn: str, aws: AccountSession) -> dict[str, Any]:
    for delay in (*RETRY_DELAYS_S, None):
        try:
            return read_role(role_arn=role_arn, aws=aws)
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity" or delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")
