"""AWS clients with the worker's own credentials, pointed where the portal's settings say."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from django.conf import settings

# IAM propagation and the sandbox both answer quickly; a slow endpoint must not hold a run.
_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3})


def worker_client(service: str, *, region: str) -> Any:
    kwargs: dict[str, Any] = {"region_name": region, "config": _CONFIG}
    if settings.AWS_ENDPOINT_URL:
        kwargs["endpoint_url"] = settings.AWS_ENDPOINT_URL
    return boto3.client(service, **kwargs)


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Code") or "")
    return ""
