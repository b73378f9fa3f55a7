"""The live proof: assume the workspace's role as its pods would, and probe the access matrix.

For each service account the worker gets a token from the configured mint
(``IRSA_TOKEN_MINT_URL``), writes it to a 0600 file in a private directory and starts
``python -m provisioning.verification.pod`` with exactly a pod's environment. Reads the probes
need (table key schemas, the buckets' current policies) and the clean-up of what a probe wrote or
what a sensitive probe should never have been able to do use the portal's session in the
cluster's account (``provisioning.aws``: its deployment role when it names one).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from provisioning.aws import AccountSession, error_code
from provisioning.iam.spec import WorkspaceSpec
from provisioning.verification import probes as p

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
POD_TIMEOUT_S = 120
MINT_TIMEOUT_S = 10
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class VerificationError(RuntimeError):
    """The verification could not run (no token, the pod crashed); the message says why."""


def verify_live(
    *,
    spec: WorkspaceSpec,
    role_arn: str,
    rows: Sequence[p.MatrixRowLike],
    mint_url: str,
    endpoint_url: str,
    aws: AccountSession,
) -> dict[str, Any]:
    started = time.monotonic()
    targets = gather_targets(rows, spec=spec, token=uuid.uuid4().hex[:12], aws=aws)
    pod = PodLauncher(spec=spec, role_arn=role_arn, mint_url=mint_url, endpoint_url=endpoint_url)
    trusts = p.plan_trust_probes(namespace=spec.namespace, service_accounts=spec.service_accounts)
    listed = set(spec.service_accounts)
    outsiders = [t for t in trusts if not (t.namespace == spec.namespace and t.sa in listed)]
    # The pods that must be refused at assume touch no data: they run alongside the listed
    # service accounts' pods, which run one after another (they share the probe item and object).
    with ThreadPoolExecutor(max_workers=len(outsiders)) as pool:
        refused = {
            t.id: pool.submit(pod.run, namespace=t.namespace, sa=t.sa, probes=[]) for t in outsiders
        }
        with _deletion_protected(rows, aws=aws):
            records, skipped, assumed = _probe_listed(pod, spec=spec, rows=rows, targets=targets)
        for trust in trusts:
            out = refused[trust.id].result() if trust.id in refused else assumed[trust.sa]
            records.append(p.interpret_trust(trust, role_arn=role_arn, pod=out))
    undo_sensitive(records, rows=rows, targets=targets, aws=aws)
    clean_probe_data(rows, targets=targets, aws=aws)
    result = p.summarize(records, mode="live", duration_s=time.monotonic() - started)
    result["not_probed"] = [s.__dict__ for s in skipped]
    return result


def _probe_listed(
    pod: PodLauncher,
    *,
    spec: WorkspaceSpec,
    rows: Sequence[p.MatrixRowLike],
    targets: p.ProbeTargets,
) -> tuple[list[dict[str, Any]], list[p.Skipped], dict[str, Mapping[str, Any]]]:
    records: list[dict[str, Any]] = []
    skipped: list[p.Skipped] = []
    assumed: dict[str, Mapping[str, Any]] = {}
    for sa in spec.service_accounts:
        planned, skipped = p.plan_probes(rows, sa=sa, targets=targets)
        out = pod.run(namespace=spec.namespace, sa=sa, probes=[x.wire() for x in planned])
        assumed[sa] = out
        by_id = {r["id"]: r for r in out.get("results", [])}
        records += [p.interpret(x, by_id.get(x.id)) for x in planned]
    return records, skipped, assumed


class PodLauncher:
    def __init__(self, *, spec: WorkspaceSpec, role_arn: str, mint_url: str, endpoint_url: str):
        self.issuer = spec.cluster.oidc_issuer
        self.region = spec.cluster.region
        self.role_arn = role_arn
        self.mint_url = mint_url
        self.endpoint_url = endpoint_url

    def run(self, *, namespace: str, sa: str, probes: list[dict[str, Any]]) -> dict[str, Any]:
        token = self.mint(p.subject(namespace, sa))
        with tempfile.TemporaryDirectory(prefix="irsa-pod-") as home:
            token_file = Path(home) / "token"
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(token)
            done = subprocess.run(
                [sys.executable, "-m", "provisioning.verification.pod"],
                input=json.dumps(probes),
                capture_output=True,
                text=True,
                cwd=ROOT,
                env=self.pod_environment(home, str(token_file), sa),
                timeout=POD_TIMEOUT_S,
                check=False,
            )
        if done.returncode != 0:
            raise VerificationError(f"the probe pod for {sa} failed: {done.stderr[-500:]}")
        return json.loads(done.stdout)

    def pod_environment(self, home: str, token_file: str, sa: str) -> dict[str, str]:
        """What EKS's pod identity webhook gives a pod, and nothing of the worker's own."""
        env = {
            "AWS_ROLE_ARN": self.role_arn,
            "AWS_WEB_IDENTITY_TOKEN_FILE": token_file,
            "AWS_ROLE_SESSION_NAME": f"irsa-verify-{sa}"[:64],
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_STS_REGIONAL_ENDPOINTS": "regional",
            "HOME": home,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        return env

    def mint(self, sub: str) -> str:
        body = json.dumps({"issuer": self.issuer, "sub": sub, "aud": "sts.amazonaws.com"})
        # The URL is the operator's IRSA_TOKEN_MINT_URL setting, never a user value.
        request = urllib.request.Request(  # noqa: S310
            self.mint_url,
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with _DIRECT.open(request, timeout=MINT_TIMEOUT_S) as response:
                return json.loads(response.read())["token"]
        except (OSError, ValueError, KeyError) as exc:
            raise VerificationError(
                f"no service-account token from IRSA_TOKEN_MINT_URL for {sub}: {exc}"
            ) from exc


def gather_targets(
    rows: Sequence[p.MatrixRowLike], *, spec: WorkspaceSpec, token: str, aws: AccountSession
) -> p.ProbeTargets:
    tables = {
        r.resource for r in rows if r.kind == "dynamodb_table" and "/index/" not in r.resource
    }
    buckets = {p.bucket_of(r.resource) for r in rows if r.action == "s3:PutBucketPolicy"}
    writable = sorted(
        p.bucket_of(r.resource)
        for r in rows
        if r.category == "own" and r.action == "s3:PutObject" and r.expected
    )
    readable = sorted(
        r.resource
        for r in rows
        if r.category == "own" and r.action == "dynamodb:GetItem" and r.expected
    )
    return p.ProbeTargets(
        token=token,
        table_keys=_table_keys(tables, aws),
        own_buckets=tuple(dict.fromkeys(writable)),
        own_tables=tuple(dict.fromkeys(readable)),
        bucket_policies=_bucket_policies(buckets, aws),
        account_id=spec.cluster.account_id,
        absent=_absent(rows, aws),
    )


def _absent(rows: Sequence[p.MatrixRowLike], aws: AccountSession) -> frozenset[str]:
    """Neighbours' keys that are gone or not enabled, and buckets that are gone."""
    kms, s3 = aws.client("kms"), aws.client("s3")
    absent: set[str] = set()
    for arn in sorted(
        {r.resource for r in rows if r.category == "neighbour" and r.kind == "kms_key"}
    ):
        try:
            if kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] != "Enabled":
                absent.add(arn)
        except Exception as exc:
            if error_code(exc) != "NotFoundException":
                raise
            absent.add(arn)
    buckets = {
        p.bucket_of(r.resource) for r in rows if r.category == "neighbour" and r.kind == "s3_bucket"
    }
    for bucket in sorted(buckets):
        try:
            s3.head_bucket(Bucket=bucket)
        except Exception as exc:
            if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            absent.add(f"arn:aws:s3:::{bucket}")
    return frozenset(absent)


def _table_keys(arns: set[str], aws: AccountSession) -> dict[str, tuple[str, str]]:
    client = aws.client("dynamodb")
    keys: dict[str, tuple[str, str]] = {}
    for arn in sorted(arns):
        try:
            table = client.describe_table(TableName=p.last_segment(arn))["Table"]
        except Exception as exc:  # the probe is then listed as not probed
            logger.info("no key schema for %s: %s", arn, exc)
            continue
        hash_key = next(k["AttributeName"] for k in table["KeySchema"] if k["KeyType"] == "HASH")
        types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
        keys[arn] = (hash_key, types[hash_key])
    return keys


def _bucket_policies(buckets: set[str], aws: AccountSession) -> dict[str, str]:
    client = aws.client("s3")
    found: dict[str, str] = {}
    for bucket in sorted(buckets):
        with contextlib.suppress(Exception):
            found[bucket] = client.get_bucket_policy(Bucket=bucket)["Policy"]
    return found


@contextlib.contextmanager
def _deletion_protected(rows: Sequence[p.MatrixRowLike], *, aws: AccountSession) -> Iterator[None]:
    """The dry-run form of DeleteTable: with deletion protection on, a DeleteTable the role is
    allowed to make is refused by DynamoDB after authorization (which the pod reports as
    allowed, failing the verification) instead of deleting the table."""
    client = aws.client("dynamodb")
    names = {p.last_segment(r.resource) for r in rows if r.action == "dynamodb:DeleteTable"}
    protected: list[str] = []
    for name in sorted(names):
        try:
            if client.describe_table(TableName=name)["Table"].get("DeletionProtectionEnabled"):
                continue
            client.update_table(TableName=name, DeletionProtectionEnabled=True)
            protected.append(name)
        except Exception as exc:
            raise VerificationError(f"could not protect table {name} for the probe: {exc}") from exc
    try:
        yield
    finally:
        for name in protected:
            client.update_table(TableName=name, DeletionProtectionEnabled=False)


def undo_sensitive(
    records: list[dict[str, Any]],
    *,
    rows: Sequence[p.MatrixRowLike],
    targets: p.ProbeTargets,
    aws: AccountSession,
) -> None:
    """Reverse what a sensitive probe did if it went through (the verification fails anyway)."""
    through = [r for r in records if r["actual"] == "allowed" and r["expected"] == "denied"]
    for record in through:
        if record["action"] == "kms:ScheduleKeyDeletion":
            kms = aws.client("kms")
            kms.cancel_key_deletion(KeyId=record["resource"])
            kms.enable_key(KeyId=record["resource"])
        elif record["action"] == "s3:PutBucketPolicy":
            bucket = p.bucket_of(record["resource"])
            if bucket not in targets.bucket_policies:  # else the probe put back the same policy
                aws.client("s3").delete_bucket_policy(Bucket=bucket)
        elif record["action"] == "iam:CreateRole":
            with contextlib.suppress(Exception):
                aws.client("iam").delete_role(RoleName=p.probe_role_name(targets.token))


def clean_probe_data(
    rows: Sequence[p.MatrixRowLike], *, targets: p.ProbeTargets, aws: AccountSession
) -> None:
    """Remove every probe item and object version this verification may have written."""
    dynamodb = aws.client("dynamodb")
    for arn, (name, key_type) in targets.table_keys.items():
        key = {name: {key_type: p.probe_key_value(key_type, targets.token)}}
        try:
            dynamodb.delete_item(TableName=p.last_segment(arn), Key=key)
        except Exception as exc:
            # A table under a key only its service role may use refuses the worker's delete
            # (its key policy); the pod's own DeleteItem probe removed the item when it could.
            logger.warning("probe item in %s not removed: %s", arn, error_code(exc) or exc)
    s3 = aws.client("s3")
    buckets = {p.bucket_of(r.resource) for r in rows if r.kind == "s3_bucket"}
    for bucket in sorted(buckets):
        prefix = f"{p.PROBE_PREFIX}/{targets.token}"
        try:
            listing = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
        except Exception as exc:
            if error_code(exc) in ("NoSuchBucket", "AccessDenied"):
                continue
            raise
        for entry in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])
