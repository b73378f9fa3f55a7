"""What a pod does: the probes, run with the credentials a pod gets, in a process of their own.

Started as ``python -m provisioning.verification.pod`` with exactly a pod's environment
(``AWS_ROLE_ARN``, ``AWS_WEB_IDENTITY_TOKEN_FILE``, ``AWS_ROLE_SESSION_NAME``, the region and the
endpoint URL, no static keys), so boto3's default credential chain performs the web-identity
assume as the SDK in the pod would. Probes arrive on stdin as JSON, results leave on stdout as
JSON. Standard library and boto3 only: no Django, nothing of the portal's settings or secrets.

Each probe is ``{"id", "op", "args"}``; each result ``{"id", "outcome", "code", "message"}`` where
outcome is ``allowed`` (AWS accepted the call, or refused it only after authorizing it),
``denied`` (an access denial) or ``error`` (anything else: never counted as a denial).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

DENIAL_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "KMS.AccessDeniedException",
        "AuthorizationError",
        "InvalidIdentityToken",
    }
)
# Codes AWS returns only after it authorized the request: the caller had the permission and the
# call then failed on the object (a missing probe object, a table with deletion protection).
AUTHORIZED_FAILURES: dict[str, frozenset[str]] = {
    "s3.get_object": frozenset({"NoSuchKey"}),
    "dynamodb.delete_table": frozenset({"ValidationException", "ResourceInUseException"}),
}
PROBE_PREFIX = "irsa-portal-verification"

Call = Callable[[Any, dict[str, Any]], Any]


def _dynamodb_key(args: dict[str, Any]) -> dict[str, Any]:
    return {args["key_name"]: {args["key_type"]: args["key_value"]}}


OPS: dict[str, tuple[str, Call]] = {
    "dynamodb.get_item": (
        "dynamodb",
        lambda c, a: c.get_item(TableName=a["table"], Key=_dynamodb_key(a)),
    ),
    "dynamodb.query": (
        "dynamodb",
        lambda c, a: c.query(
            TableName=a["table"],
            KeyConditionExpression="#k = :v",
            ExpressionAttributeNames={"#k": a["key_name"]},
            ExpressionAttributeValues={":v": {a["key_type"]: a["key_value"]}},
            Limit=1,
        ),
    ),
    "dynamodb.scan": ("dynamodb", lambda c, a: c.scan(TableName=a["table"], Limit=1)),
    "dynamodb.describe_table": ("dynamodb", lambda c, a: c.describe_table(TableName=a["table"])),
    "dynamodb.put_item": (
        "dynamodb",
        lambda c, a: c.put_item(
            TableName=a["table"], Item={**_dynamodb_key(a), "probe": {"S": PROBE_PREFIX}}
        ),
    ),
    "dynamodb.update_item": (
        "dynamodb",
        lambda c, a: c.update_item(
            TableName=a["table"],
            Key=_dynamodb_key(a),
            UpdateExpression="SET probe = :p",
            ExpressionAttributeValues={":p": {"S": PROBE_PREFIX}},
        ),
    ),
    "dynamodb.delete_item": (
        "dynamodb",
        lambda c, a: c.delete_item(TableName=a["table"], Key=_dynamodb_key(a)),
    ),
    "dynamodb.delete_table": ("dynamodb", lambda c, a: c.delete_table(TableName=a["table"])),
    "s3.put_object": (
        "s3",
        lambda c, a: c.put_object(Bucket=a["bucket"], Key=a["key"], Body=b"probe"),
    ),
    "s3.put_object_sse_kms": (
        "s3",
        lambda c, a: c.put_object(
            Bucket=a["bucket"],
            Key=a["key"],
            Body=b"probe",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=a["key_id"],
        ),
    ),
    "s3.get_object": ("s3", lambda c, a: c.get_object(Bucket=a["bucket"], Key=a["key"])),
    "s3.list_objects": (
        "s3",
        lambda c, a: c.list_objects_v2(Bucket=a["bucket"], Prefix=PROBE_PREFIX, MaxKeys=1),
    ),
    "s3.delete_object": ("s3", lambda c, a: c.delete_object(Bucket=a["bucket"], Key=a["key"])),
    "s3.put_bucket_policy": (
        "s3",
        lambda c, a: c.put_bucket_policy(Bucket=a["bucket"], Policy=a["policy"]),
    ),
    "kms.generate_data_key": (
        "kms",
        lambda c, a: c.generate_data_key(KeyId=a["key_id"], KeySpec="AES_256"),
    ),
    "kms.encrypt": ("kms", lambda c, a: c.encrypt(KeyId=a["key_id"], Plaintext=b"probe")),
    "kms.describe_key": ("kms", lambda c, a: c.describe_key(KeyId=a["key_id"])),
    "kms.schedule_key_deletion": (
        "kms",
        lambda c, a: c.schedule_key_deletion(KeyId=a["key_id"], PendingWindowInDays=30),
    ),
    "iam.create_role": (
        "iam",
        lambda c, a: c.create_role(
            RoleName=a["role_name"], Path=a["path"], AssumeRolePolicyDocument=a["trust"]
        ),
    ),
    "sts.get_caller_identity": ("sts", lambda c, a: c.get_caller_identity()),
}


def error_code(exc: BaseException) -> tuple[str, str]:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        return str(error.get("Code") or type(exc).__name__), str(error.get("Message") or exc)
    return type(exc).__name__, str(exc)


def classify(op: str, code: str) -> str:
    if code in DENIAL_CODES:
        return "denied"
    if code in AUTHORIZED_FAILURES.get(op, ()):
        return "allowed"
    return "error"


def run_probe(session: Any, clients: dict[str, Any], probe: dict[str, Any]) -> dict[str, Any]:
    op = probe["op"]
    service, call = OPS[op]
    if service not in clients:
        clients[service] = session.client(service)
    try:
        call(clients[service], probe.get("args") or {})
    except Exception as exc:  # every failure is reported, none is fatal
        code, message = error_code(exc)
        return {"id": probe["id"], "outcome": classify(op, code), "code": code, "message": message}
    return {"id": probe["id"], "outcome": "allowed", "code": "", "message": ""}


def run_probes(probes: list[dict[str, Any]]) -> dict[str, Any]:
    """Assume first (once, as the SDK does on the first call), then every probe in order."""
    import boto3  # late: ``classify`` and friends are imported by the parent without boto3 cost

    session = boto3.session.Session()
    clients: dict[str, Any] = {}
    try:
        # Resolving the credentials is the AssumeRoleWithWebIdentity call, nothing else.
        credentials = session.get_credentials()
        if credentials is None:
            raise RuntimeError("boto3 found no credentials in the pod's environment")
        credentials.get_frozen_credentials()
    except Exception as exc:  # a refused assume is a result, not a crash
        code, message = error_code(exc)
        outcome = "denied" if code in DENIAL_CODES else "error"
        return {
            "assumed": False,
            "assume": {"outcome": outcome, "code": code, "message": message},
            "results": [
                {"id": p["id"], "outcome": outcome, "code": code, "message": message}
                for p in probes
            ],
        }
    results = [run_probe(session, clients, p) for p in probes]
    return {"assumed": True, "results": results}


def main() -> int:
    probes = json.load(sys.stdin)
    json.dump(run_probes(probes), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
