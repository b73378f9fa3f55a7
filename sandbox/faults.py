"""Faults the sandbox injects on request, to test how the portal copes with AWS under load.

``POST /_sandbox/faults`` with ``{"throttle": {"service": "iam", "count": 5}}`` makes the next 5
requests to that service answer as AWS does when a caller exceeds its request rate (IAM:
``Throttling`` / ``Rate exceeded``, HTTP 400; DynamoDB/KMS: ``ThrottlingException``; S3:
``SlowDown``, 503). ``{"throttle": {"service": "iam", "count": 0}}`` clears it; ``GET`` shows what
is left. Any caller's requests count, the admin's included: a fault is the server's, not a policy.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

from sandbox.errors import AwsError

PATH = "/_sandbox/faults"
SERVICES = ("dynamodb", "iam", "kms", "s3", "sts")
_THROTTLE = {
    "iam": ("Throttling", "Rate exceeded", 400),
    "sts": ("Throttling", "Rate exceeded", 400),
    "dynamodb": ("ThrottlingException", "Rate of requests exceeds the allowed throughput.", 400),
    "kms": ("ThrottlingException", "Rate exceeded", 400),
    "s3": ("SlowDown", "Please reduce your request rate.", 503),
}


class FaultError(ValueError):
    """The fault request is malformed; the message says what to send."""


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._throttle: dict[str, int] = {}

    def configure(self, document: Any) -> dict[str, int]:
        throttle = document.get("throttle") if isinstance(document, dict) else None
        if not isinstance(throttle, dict):
            raise FaultError('send {"throttle": {"service": "iam", "count": 5}}')
        service, count = throttle.get("service"), throttle.get("count")
        if service not in SERVICES:
            raise FaultError(f"service must be one of: {', '.join(SERVICES)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise FaultError("count must be a whole number >= 0")
        with self._lock:
            self._throttle[service] = count
            return dict(self._throttle)

    def pending(self) -> dict[str, int]:
        with self._lock:
            return dict(self._throttle)

    def take(self, service: str) -> AwsError | None:
        """The throttling answer for this request, if a fault is pending for its service."""
        with self._lock:
            if self._throttle.get(service, 0) <= 0:
                return None
            self._throttle[service] -= 1
        code, message, status = _THROTTLE[service]
        return AwsError(service, code, message, status)


def inject_throttling(endpoint_url: str, *, service: str, count: int) -> dict[str, int]:
    """Client side, for tests and benchmarks."""
    if not endpoint_url.startswith(("http://", "https://")):
        raise ValueError("endpoint_url must be an http:// or https:// URL")
    body = json.dumps({"throttle": {"service": service, "count": count}}).encode()
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        endpoint_url.rstrip("/") + PATH,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())
