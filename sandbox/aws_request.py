"""What an incoming AWS API request is: who signed it, for which service, region and action.

Read from the WSGI environ before moto sees it. A body we read is put back (`wsgi.input`), so
moto parses the same bytes. S3 bodies are never read: object uploads can be large and the
authorization decision needs only the method, path, query and headers.
"""

from __future__ import annotations

import io
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Environ = dict[str, Any]

# SigV4: "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/aws4_request, ..."
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_SIGV2_HEADER = re.compile(r"AWS ([^:\s]+):")
_DEFAULT_REGION = "us-east-1"
MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass
class AwsRequest:
    access_key_id: str | None
    region: str
    service: str  # the SigV4 signing name: dynamodb, kms, s3, iam, sts...
    method: str
    path: str
    host: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    secure: bool
    body: bytes = b""
    _params: dict[str, str] | None = field(default=None, repr=False)

    @property
    def session_token(self) -> str | None:
        """The STS session token: a header, or a query parameter in a presigned URL."""
        token = self.headers.get("x-amz-security-token")
        for name in ("X-Amz-Security-Token", "x-amz-security-token"):  # SigV4 / SigV2 spelling
            token = token or (self.query.get(name) or [None])[0]
        return token

    @property
    def target(self) -> str:
        """The JSON protocol's operation, e.g. "GetItem" from DynamoDB_20120810.GetItem."""
        return self.headers.get("x-amz-target", "").rpartition(".")[2]

    def json_body(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def params(self) -> dict[str, str]:
        """Query-protocol parameters (IAM, STS) from the query string and the form body."""
        if self._params is None:
            merged = {k: v[0] for k, v in self.query.items() if v}
            if self.body and "x-www-form-urlencoded" in self.headers.get("content-type", ""):
                form = urllib.parse.parse_qs(self.body.decode(errors="replace"))
                merged.update({k: v[0] for k, v in form.items() if v})
            self._params = merged
        return self._params

    def member_list(self, name: str) -> list[str]:
        """A query-protocol list: Name.member.1, Name.member.2, ..."""
        params = self.params()
        values, index = [], 1
        while f"{name}.member.{index}" in params:
            values.append(params[f"{name}.member.{index}"])
            index += 1
        return values


def parse_request(environ: Environ) -> AwsRequest:
    access_key_id, region, service = _credential_scope(environ)
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    request = AwsRequest(
        access_key_id=access_key_id,
        region=region,
        service=service or _unsigned_service(environ, query),
        method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
        path=_path(environ),
        host=headers.get("host", ""),
        query=query,
        headers=headers,
        secure=environ.get("wsgi.url_scheme") == "https",
    )
    if request.service != "s3":
        request.body = read_body(environ)
    return request


def read_body(environ: Environ) -> bytes:
    """Read the whole body and put it back for moto."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0 or length > MAX_BODY_BYTES:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _credential_scope(environ: Environ) -> tuple[str | None, str, str]:
    header = str(environ.get("HTTP_AUTHORIZATION", ""))
    match = _CREDENTIAL.search(header)
    if match:
        return match[1], match[2], match[3].lower()
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    # A SigV4 presigned URL carries the same scope in X-Amz-Credential.
    parts = (query.get("X-Amz-Credential") or [""])[0].split("/")
    if len(parts) == 5:
        return parts[0], parts[2], parts[3].lower()
    # SigV2, which only S3 still accepts (boto3 presigns S3 URLs with it by default).
    legacy = _SIGV2_HEADER.match(header)
    key = legacy[1] if legacy else (query.get("AWSAccessKeyId") or [None])[0]
    if key:
        return key, _DEFAULT_REGION, "s3"
    return None, _DEFAULT_REGION, ""


def _unsigned_service(environ: Environ, query: dict[str, list[str]]) -> str:
    """Unsigned calls we care about are STS's web-identity ones (a pod has no keys yet)."""
    action = (query.get("Action") or [""])[0]
    content_type = str(environ.get("CONTENT_TYPE", ""))
    if not action and content_type.startswith("application/x-www-form-urlencoded"):
        body = read_body(environ)
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        action = (form.get("Action") or [""])[0]
    if action in ("AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"):
        return "sts"
    return ""


def _path(environ: Environ) -> str:
    raw = environ.get("PATH_INFO", "/")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    # WSGI hands PATH_INFO over as latin-1 decoded bytes; S3 keys are UTF-8.
    try:
        return str(raw).encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return str(raw)
