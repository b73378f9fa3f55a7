"""``Idempotency-Key`` on POSTs: a retried request gets the first 2xx answer, not a duplicate.

The key is scoped to the user; the answer is kept IDEMPOTENCY_KEY_TTL seconds (24 hours by default;
beat's ``purge_idempotency_records`` deletes older ones). The same key with another path or
body is a client bug and is refused (422) rather than answered with an unrelated response. Only
2xx answers are stored: a refused request changed nothing, so sending it again is harmless.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from provisioning.api.models import IdempotencyRecord

HEADER = "Idempotency-Key"


def kept_for() -> timedelta:
    return timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL)


class _Replay(Exception):
    def __init__(self, record: IdempotencyRecord) -> None:
        self.record = record


class KeyReused(exceptions.APIException):
    status_code = 422
    default_detail = "This Idempotency-Key was used for a different request; use a new key."


class IdempotentPostMixin:
    """For APIViews: replay the stored answer of a POST sent again with the same key."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        self._idempotency: tuple[str, str] | None = None
        key = request.headers.get(HEADER)
        if request.method != "POST" or not key:
            return
        if len(key) > 255:
            raise exceptions.ValidationError({HEADER: ["At most 255 characters."]})
        fingerprint = hashlib.sha256(request._request.body).hexdigest()
        since = timezone.now() - kept_for()
        record = IdempotencyRecord.objects.filter(
            user=request.user, key=key, created_at__gte=since
        ).first()
        if record is not None:
            if record.path != request.path or record.body_sha256 != fingerprint:
                raise KeyReused()
            raise _Replay(record)
        self._idempotency = (key, fingerprint)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Replay):
            headers = {"Idempotent-Replayed": "true"}
            return Response(exc.record.response, status=exc.record.status_code, headers=headers)
        return super().handle_exception(exc)  # type: ignore[misc]

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        pending = getattr(self, "_idempotency", None)
        if pending is not None and 200 <= response.status_code < 300:
            _store(request, response, *pending)
        return response


def _store(request: Request, response: Response, key: str, fingerprint: str) -> None:
    body = json.loads(JSONRenderer().render(response.data) or b"null")
    IdempotencyRecord.objects.filter(
        user=request.user, key=key, created_at__lt=timezone.now() - kept_for()
    ).delete()
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(
                user=request.user,
                key=key,
                method=request.method,
                path=request.path,
                body_sha256=fingerprint,
                status_code=response.status_code,
                response=body,
            )
    except IntegrityError:  # a concurrent retry stored its answer first; both are valid answers
        pass
