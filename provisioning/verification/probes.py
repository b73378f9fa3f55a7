"""Pure: which live calls prove a workspace's access matrix, and what their outcomes mean.

The access matrix (``provisioning.analysis.matrix``) says, row by row, whether an action on a
resource is expected to be allowed. Here each row becomes a probe: one AWS call the pod makes,
chosen so that it shows the permission and destroys nothing (see ``_sensitive`` for the
destructive actions). Expected values are the matrix's; nothing here re-derives them. Rows that no
honest call can show (e.g. ``kms:Decrypt`` of a ciphertext that does not exist) are listed as not
probed rather than guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from provisioning.verification.pod import PROBE_PREFIX

UNLISTED_SERVICE_ACCOUNT = "irsa-verification-unlisted"
OTHER_NAMESPACE_SUFFIX = "-elsewhere"
ASSUME_ACTION = "sts:AssumeRoleWithWebIdentity"
# Puts first (the probe item and object the reads then find), deletes of probe data and the
# sensitive actions last.
OP_ORDER = {
    "dynamodb.put_item": 0,
    "s3.put_object": 0,
    "s3.put_object_sse_kms": 1,
    "dynamodb.delete_item": 8,
    "dynamodb.delete_table": 9,
    "s3.put_bucket_policy": 9,
    "kms.schedule_key_deletion": 9,
    "iam.create_role": 9,
}


class MatrixRowLike(Protocol):
    category: str
    kind: str
    action: str
    resource: str
    expected: bool
    context: Mapping[str, Any]


@dataclass(frozen=True)
class ProbeTargets:
    """What the planner needs beyond the rows; gathered by ``live`` with the worker's reads."""

    token: str  # unique per verification: names the probe item, object and role
    table_keys: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # ARN: (name, S|N|B)
    own_buckets: tuple[str, ...] = ()  # own buckets the matrix lets the role PutObject into
    own_tables: tuple[str, ...] = ()  # own table ARNs the matrix lets the role GetItem from
    bucket_policies: Mapping[str, str] = field(default_factory=dict)  # bucket: its policy JSON
    account_id: str = ""
    # Neighbours' keys and buckets that do not exist (any more) or cannot be used: nothing to
    # prove against them, so their rows are skipped rather than reported as errors.
    absent: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Probe:
    id: str
    sa: str
    category: str
    kind: str
    action: str
    resource: str
    expected: bool
    op: str
    args: Mapping[str, Any]

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "op": self.op, "args": dict(self.args)}


@dataclass(frozen=True)
class Skipped:
    category: str
    action: str
    resource: str
    reason: str


def last_segment(arn: str) -> str:
    tail = arn.split(":::", 1)[-1] if ":s3:::" in arn else arn.rsplit(":", 1)[-1]
    return tail.split("/", 1)[-1] if tail.startswith(("table/", "key/", "role/")) else tail


def probe_id(sa: str, category: str, action: str, resource: str, via: str = "") -> str:
    """``a/own/kms:Decrypt/<key id>@dynamodb``: a key used through a service is its own probe."""
    suffix = f"@{via.split('.', 1)[0]}" if via else ""
    return f"{sa}/{category}/{action}/{last_segment(resource)}{suffix}"


def bucket_of(arn: str) -> str:
    return arn.split(":::", 1)[-1].split("/", 1)[0]


def probe_key_value(key_type: str, token: str) -> str:
    return f"9{int(token, 16) % 10**12}" if key_type == "N" else f"{PROBE_PREFIX}-{token}"


def plan_probes(
    rows: Iterable[MatrixRowLike], *, sa: str, targets: ProbeTargets
) -> tuple[list[Probe], list[Skipped]]:
    """One probe per row a live call can show, in a safe order; the rest listed as skipped."""
    probes: list[Probe] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for row in rows:
        planned = _call_for(row, targets)
        if isinstance(planned, str):
            skipped.append(Skipped(row.category, row.action, row.resource, planned))
            continue
        op, args = planned
        via = str((row.context or {}).get("kms:ViaService", ""))
        pid = probe_id(sa, row.category, row.action, row.resource, via)
        if pid in seen:
            continue
        seen.add(pid)
        probes.append(
            Probe(pid, sa, row.category, row.kind, row.action, row.resource, row.expected, op, args)
        )
    probes.sort(key=lambda p: OP_ORDER.get(p.op, 5))
    return probes, skipped


def _call_for(row: MatrixRowLike, targets: ProbeTargets) -> tuple[str, dict[str, Any]] | str:
    if row.resource in targets.absent or f"arn:aws:s3:::{bucket_of(row.resource)}" in (
        targets.absent
    ):
        return "the resource does not exist or is not enabled"
    service = row.action.split(":", 1)[0]
    planner = {"dynamodb": _dynamodb, "s3": _s3, "kms": _kms, "iam": _iam}.get(service)
    if planner is None:
        return f"no live probe for {service} actions"
    return planner(row, targets)


def _dynamodb(row: MatrixRowLike, targets: ProbeTargets) -> tuple[str, dict[str, Any]] | str:
    if "/index/" in row.resource:
        return "index ARNs are covered by the table's own probes"
    ops = {
        "GetItem": "dynamodb.get_item",
        "Query": "dynamodb.query",
        "Scan": "dynamodb.scan",
        "DescribeTable": "dynamodb.describe_table",
        "PutItem": "dynamodb.put_item",
        "UpdateItem": "dynamodb.update_item",
        "DeleteItem": "dynamodb.delete_item",
        "DeleteTable": "dynamodb.delete_table",
    }
    op = ops.get(row.action.split(":", 1)[1])
    if op is None:
        return "no live probe for this DynamoDB action"
    key = targets.table_keys.get(row.resource)
    if key is None:
        return "the table's key schema could not be read"
    name, key_type = key
    args = {"table": last_segment(row.resource), "key_name": name, "key_type": key_type}
    return op, {**args, "key_value": probe_key_value(key_type, targets.token)}


def _s3(row: MatrixRowLike, targets: ProbeTargets) -> tuple[str, dict[str, Any]] | str:
    bucket = bucket_of(row.resource)
    key = f"{PROBE_PREFIX}/{targets.token}"
    action = row.action.split(":", 1)[1]
    if action == "PutBucketPolicy":
        # The sensitive probe puts back the bucket's current policy (a no-op if it goes through,
        # which is itself the failure); a bucket without one gets a deny of a key nobody uses,
        # which ``live`` deletes again should the put ever succeed.
        policy = targets.bucket_policies.get(bucket) or harmless_bucket_policy(bucket, targets)
        return "s3.put_bucket_policy", {"bucket": bucket, "policy": policy}
    ops = {
        "PutObject": "s3.put_object",
        "GetObject": "s3.get_object",
        "DeleteObject": "s3.delete_object",
        "ListBucket": "s3.list_objects",
    }
    if action not in ops:
        return "no live probe for this S3 action"
    return ops[action], {"bucket": bucket, "key": key}


def harmless_bucket_policy(bucket: str, targets: ProbeTargets) -> str:
    statement = {
        "Sid": "IrsaPortalVerificationProbe",
        "Effect": "Deny",
        "Principal": {"AWS": f"arn:aws:iam::{targets.account_id}:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/{PROBE_PREFIX}/{targets.token}-never",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _kms(row: MatrixRowLike, targets: ProbeTargets) -> tuple[str, dict[str, Any]] | str:
    action = row.action.split(":", 1)[1]
    via = str((row.context or {}).get("kms:ViaService", ""))
    if action == "ScheduleKeyDeletion":
        # Scheduled with the longest window; ``live`` cancels it and re-enables the key with the
        # worker's credentials should it ever go through (which fails the verification).
        return "kms.schedule_key_deletion", {"key_id": row.resource}
    if via.startswith("s3.") and action == "GenerateDataKey":
        if not targets.own_buckets:
            return "no own bucket the role may write to, to use the key through S3"
        key = f"{PROBE_PREFIX}/{targets.token}-kms"
        args = {"bucket": targets.own_buckets[0], "key": key, "key_id": row.resource}
        return "s3.put_object_sse_kms", args
    if via.startswith("dynamodb.") and action == "Decrypt" and row.category == "own":
        # DynamoDB decrypts the table key as the caller for every item operation on a table
        # under this key: reading the probe item from an own table uses the key through it.
        # (A neighbour's key through DynamoDB cannot be shown apart: its table refuses first.)
        readable = [t for t in targets.own_tables if t in targets.table_keys]
        if not readable:
            return "no own table the role may read, to use the key through DynamoDB"
        name, key_type = targets.table_keys[readable[0]]
        args = {"table": last_segment(readable[0]), "key_name": name, "key_type": key_type}
        return "dynamodb.get_item", {**args, "key_value": probe_key_value(key_type, targets.token)}
    if via:
        return f"no live call uses the key through {via} on its own"
    ops = {
        "GenerateDataKey": "kms.generate_data_key",
        "Encrypt": "kms.encrypt",
        "DescribeKey": "kms.describe_key",
    }
    if action not in ops:
        return "no live probe for this KMS action without a ciphertext"
    return ops[action], {"key_id": row.resource}


def _iam(row: MatrixRowLike, targets: ProbeTargets) -> tuple[str, dict[str, Any]] | str:
    if row.action != "iam:CreateRole":
        return "no live probe for this IAM action"
    # A role with no permissions that nobody can assume; ``live`` deletes it if it was created.
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": {"AWS": row.resource.split(":role/", 1)[0] + ":root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    args = {
        "role_name": probe_role_name(targets.token),
        "path": "/irsa/",
        "trust": json.dumps(trust),
    }
    return "iam.create_role", args


def probe_role_name(token: str) -> str:
    return f"{PROBE_PREFIX}-{token}"


@dataclass(frozen=True)
class TrustProbe:
    id: str
    sa: str
    namespace: str
    expected: bool


def plan_trust_probes(*, namespace: str, service_accounts: Iterable[str]) -> list[TrustProbe]:
    """Every listed service account may assume; an unlisted one and another namespace may not."""
    listed = sorted(service_accounts)
    probes = [TrustProbe(f"{sa}/trust/assume", sa, namespace, True) for sa in listed]
    unlisted = UNLISTED_SERVICE_ACCOUNT
    probes.append(TrustProbe(f"{unlisted}/trust/assume", unlisted, namespace, False))
    other = (namespace[: 63 - len(OTHER_NAMESPACE_SUFFIX)] + OTHER_NAMESPACE_SUFFIX).strip("-")
    probes.append(TrustProbe(f"{other}:{listed[0]}/trust/assume", listed[0], other, False))
    return probes


def subject(namespace: str, sa: str) -> str:
    return f"system:serviceaccount:{namespace}:{sa}"


def interpret(probe: Probe, result: Mapping[str, Any] | None) -> dict[str, Any]:
    """A probe's record: an error that is not an access denial is an error, never a denial."""
    if result is None:
        return _record(probe.id, probe, "error", "the pod returned no result for this probe")
    outcome = result.get("outcome", "error")
    detail = (
        f"{result.get('code')}: {result.get('message', '')}"[:300] if result.get("code") else ""
    )
    return _record(probe.id, probe, outcome, detail)


def interpret_trust(probe: TrustProbe, *, role_arn: str, pod: Mapping[str, Any]) -> dict[str, Any]:
    if pod.get("assumed"):
        outcome, detail = "allowed", ""
    else:
        assume = pod.get("assume") or {}
        outcome = assume.get("outcome", "error")
        detail = f"{assume.get('code', '')}: {assume.get('message', '')}"[:300]
    record = {
        "id": probe.id,
        "sa": probe.sa,
        "category": "trust",
        "action": ASSUME_ACTION,
        "resource": role_arn,
        "subject": subject(probe.namespace, probe.sa),
    }
    return {**record, **_verdict(probe.expected, outcome, detail)}


def _record(pid: str, probe: Probe, outcome: str, detail: str) -> dict[str, Any]:
    record = {
        "id": pid,
        "sa": probe.sa,
        "category": probe.category,
        "action": probe.action,
        "resource": probe.resource,
    }
    return {**record, **_verdict(probe.expected, outcome, detail)}


def _verdict(expected: bool, outcome: str, detail: str) -> dict[str, Any]:
    ok = outcome != "error" and (outcome == "allowed") == expected
    return {
        "expected": "allowed" if expected else "denied",
        "actual": outcome,
        "ok": ok,
        "detail": detail,
    }


def summarize(records: list[dict[str, Any]], *, mode: str, duration_s: float) -> dict[str, Any]:
    return {
        "mode": mode,
        "probes": records,
        "failed": [r["id"] for r in records if not r["ok"]],
        "duration_s": round(duration_s, 2),
    }
