"""S3 requests as IAM sees them: actions on `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.

The bucket policy is the resource policy of every check on a bucket or its objects. With SSE-KMS
(a KMS key named in the request, or the bucket's default encryption), S3 calls KMS on the
caller's behalf: that is a second check, `kms:GenerateDataKey` for writes and `kms:Decrypt` for
reads, on the key with its key policy and `kms:ViaService = s3.<region>.amazonaws.com` — the
path that lets a policy say "this key only through S3".
"""

from __future__ import annotations

import re
import urllib.parse

from sandbox import moto_state
from sandbox.authz.checks import Caller, Check
from sandbox.authz.kms import key_check
from sandbox.aws_request import AwsRequest

# Sub-resources in the query string -> the action's stem (Get/Put/Delete + stem).
_BUCKET_SUBRESOURCES = {
    "policy": "BucketPolicy",
    "acl": "BucketAcl",
    "versioning": "BucketVersioning",
    "tagging": "BucketTagging",
    "encryption": "EncryptionConfiguration",
    "publicAccessBlock": "BucketPublicAccessBlock",
    "cors": "BucketCORS",
    "lifecycle": "LifecycleConfiguration",
    "logging": "BucketLogging",
    "notification": "BucketNotification",
    "ownershipControls": "BucketOwnershipControls",
    "website": "BucketWebsite",
    "object-lock": "BucketObjectLockConfiguration",
    "replication": "ReplicationConfiguration",
}
_OBJECT_SUBRESOURCES = {
    "acl": "ObjectAcl",
    "tagging": "ObjectTagging",
    "retention": "ObjectRetention",
}
# S3's own names that do not follow the Get/Put/Delete + stem pattern.
_IRREGULAR = {
    "DeleteEncryptionConfiguration": "s3:PutEncryptionConfiguration",
    "DeleteBucketTagging": "s3:PutBucketTagging",
    "DeleteBucketPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "DeleteBucketCORS": "s3:PutBucketCORS",
    "DeleteLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "DeleteObjectTagging": "s3:DeleteObjectTagging",
}
_VERB = {"GET": "Get", "HEAD": "Get", "PUT": "Put", "DELETE": "Delete", "POST": "Put"}
_VIRTUAL_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]*)\.s3[.-]")


def checks(request: AwsRequest, caller: Caller) -> list[Check]:
    bucket, key = _bucket_and_key(request)
    if not bucket:
        return [Check("s3:ListAllMyBuckets", "*")]
    bucket_arn = f"arn:{caller.partition}:s3:::{bucket}"
    policy = moto_state.bucket_policy(bucket)
    if key is None:
        return [Check(_bucket_action(request), bucket_arn, policy)]
    found = [Check(_object_action(request), f"{bucket_arn}/{key}", policy)]
    copy_source = request.headers.get("x-amz-copy-source")
    if request.method == "PUT" and copy_source:
        found += _copy_source_checks(request, caller, copy_source)
    found += _sse_kms_checks(request, caller, bucket, key)
    return found


def _copy_source_checks(request: AwsRequest, caller: Caller, copy_source: str) -> list[Check]:
    """CopyObject reads the source: s3:GetObject on it, and its key's Decrypt through S3."""
    source = urllib.parse.unquote(copy_source.split("?")[0].lstrip("/"))
    source_bucket, _, source_key = source.partition("/")
    found = [
        Check(
            "s3:GetObject",
            f"arn:{caller.partition}:s3:::{source}",
            moto_state.bucket_policy(source_bucket),
        )
    ]
    key_id = moto_state.object_kms_key_id(source_bucket, source_key)
    return found + _kms_via_s3(request, caller, key_id, "kms:Decrypt")


def _bucket_and_key(request: AwsRequest) -> tuple[str, str | None]:
    host = request.host.split(":")[0]
    virtual = _VIRTUAL_HOST.match(host)
    path = request.path.lstrip("/")
    if virtual:
        bucket, key = virtual["bucket"], path
    else:
        bucket, _, key = path.partition("/")
    return bucket, (key or None)


def _bucket_action(request: AwsRequest) -> str:
    method, query = request.method, request.query
    if method == "POST" and "delete" in query:
        return "s3:DeleteObject"  # DeleteObjects: checked per bucket here, see docs/sandbox.md
    for name, stem in _BUCKET_SUBRESOURCES.items():
        if name in query:
            return _named(method, stem)
    if "location" in query:
        return "s3:GetBucketLocation"
    if "versions" in query:
        return "s3:ListBucketVersions"
    if "uploads" in query:
        return "s3:ListBucketMultipartUploads"
    return {"PUT": "s3:CreateBucket", "DELETE": "s3:DeleteBucket"}.get(method, "s3:ListBucket")


def _object_action(request: AwsRequest) -> str:
    method, query = request.method, request.query
    for name, stem in _OBJECT_SUBRESOURCES.items():
        if name in query:
            return _named(method, stem)
    if "uploadId" in query:
        return {
            "GET": "s3:ListMultipartUploadParts",
            "DELETE": "s3:AbortMultipartUpload",
        }.get(method, "s3:PutObject")
    versioned = "versionId" in query
    if method in ("GET", "HEAD"):
        return "s3:GetObjectVersion" if versioned else "s3:GetObject"
    if method == "DELETE":
        return "s3:DeleteObjectVersion" if versioned else "s3:DeleteObject"
    return "s3:PutObject"  # PUT, and POST ?uploads (CreateMultipartUpload)


def _named(method: str, stem: str) -> str:
    name = f"{_VERB.get(method, 'Get')}{stem}"
    return _IRREGULAR.get(name, f"s3:{name}")


def _sse_kms_checks(request: AwsRequest, caller: Caller, bucket: str, key: str) -> list[Check]:
    """The KMS call S3 makes for the caller when the object is (to be) encrypted with a key.
    HeadObject reads only metadata: S3 calls KMS for GetObject, not for HEAD."""
    method = request.method
    if method == "GET" and not request.query.keys() - {"versionId", "partNumber"}:
        return _kms_via_s3(
            request, caller, moto_state.object_kms_key_id(bucket, key), "kms:Decrypt"
        )
    if method in ("PUT", "POST") and not request.query.keys() & {"acl", "tagging", "retention"}:
        key_id = _requested_kms_key(request, bucket)
        return _kms_via_s3(request, caller, key_id, "kms:GenerateDataKey")
    return []


def _kms_via_s3(
    request: AwsRequest, caller: Caller, key_id: str | None, action: str
) -> list[Check]:
    found = moto_state.kms_key(caller.account_id, request.region, key_id) if key_id else None
    if found is None:
        return []  # no key, the AWS-managed aws/s3 key, or a key moto does not know
    context = {
        "kms:ViaService": f"s3.{request.region}.amazonaws.com",
        "kms:CallerAccount": caller.account_id,
    }
    return [key_check(action, found, context)]


def _requested_kms_key(request: AwsRequest, bucket: str) -> str | None:
    if "uploadId" in request.query:
        return None  # parts reuse the data key S3 generated at CreateMultipartUpload
    headers = request.headers
    if headers.get("x-amz-server-side-encryption") == "aws:kms":
        named = headers.get("x-amz-server-side-encryption-aws-kms-key-id")
        return named or moto_state.bucket_default_kms_key_id(bucket)
    if headers.get("x-amz-server-side-encryption"):
        return None  # AES256 asked for explicitly
    return moto_state.bucket_default_kms_key_id(bucket)
