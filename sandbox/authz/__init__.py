"""What a request needs to be allowed: one or more (action, resource) checks per request.

Each service module turns a parsed request into `Check`s against real resource ARNs; the gateway
evaluates every check and refuses the request at the first one that is not allowed, as AWS does
for operations that touch several resources (BatchGetItem, CopyObject, SSE-KMS PutObject).
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox.authz import dynamodb, iam_sts, kms, s3
from sandbox.authz.checks import Caller, Check
from sandbox.aws_request import AwsRequest

ENFORCED_SERVICES: dict[str, Callable[[AwsRequest, Caller], list[Check]]] = {
    "dynamodb": dynamodb.checks,
    "kms": kms.checks,
    "s3": s3.checks,
    "iam": iam_sts.iam_checks,
    "sts": iam_sts.sts_checks,
}


def checks_for(request: AwsRequest, caller: Caller) -> list[Check] | None:
    """The checks for a request to an enforced service; None for services we do not enforce."""
    build = ENFORCED_SERVICES.get(request.service)
    return build(request, caller) if build is not None else None


__all__ = ["ENFORCED_SERVICES", "Caller", "Check", "checks_for"]
