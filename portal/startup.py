"""Refuse to run against real AWS without a permissions boundary.

With ``AWS_ENDPOINT_URL`` empty the portal's Terraform creates IAM roles in a real account; every
role must then carry ``IRSA_PERMISSIONS_BOUNDARY_ARN``, the ceiling no policy can exceed. A
production process (DEBUG=0: the web app via wsgi, the Celery worker and beat, every manage.py
command through the system check) refuses to start without it; the Terraform context refuses a
run without it whatever DEBUG says. Tests and ``make run`` use the sandbox (AWS_ENDPOINT_URL set).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

BOUNDARY_MISSING = (
    "AWS_ENDPOINT_URL is empty, so the portal would create IAM roles in real AWS, but "
    "IRSA_PERMISSIONS_BOUNDARY_ARN is not set. Set IRSA_PERMISSIONS_BOUNDARY_ARN to the ARN of "
    "the permissions boundary policy every IRSA role must carry (see docs/deploy.md), or point "
    "AWS_ENDPOINT_URL at the sandbox for local use."
)


def aws_target_problem(*, endpoint_url: str, boundary_arn: str) -> str | None:
    """Pure: the reason this configuration must not run, or None."""
    if not endpoint_url and not boundary_arn:
        return BOUNDARY_MISSING
    return None


def require_safe_aws_target(settings: Any, *, always: bool = False) -> None:
    """ImproperlyConfigured when a production (or, with ``always``, any) process would run
    against real AWS without the boundary."""
    if settings.DEBUG and not always:
        return
    problem = aws_target_problem(
        endpoint_url=settings.AWS_ENDPOINT_URL, boundary_arn=settings.IRSA_PERMISSIONS_BOUNDARY_ARN
    )
    if problem:
        raise ImproperlyConfigured(problem)


def check_aws_target(app_configs: Any = None, **kwargs: Any) -> list:
    """Django system check (irsa.E001): manage.py commands refuse to start, as the app does."""
    from django.conf import settings
    from django.core.checks import Error

    try:
        require_safe_aws_target(settings)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="irsa.E001")]
    return []
