"""Refuse malformed requests before any view or database query sees them.

A body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` gets 413: Django only enforces that limit when a view
reads ``request.body``, and DRF's parsers read the stream directly. A NUL or other control
character in the path or a query parameter gets 400: PostgreSQL refuses NUL in text, which would
otherwise surface as a 500 from whichever filter used the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RequestGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and _content_length(request) > limit:
            return _refusal(
                request,
                413,
                f"The request body is larger than {limit} bytes; send less (fewer resources "
                "or a shorter text).",
            )
        if _CONTROL.search(request.path) or any(
            _CONTROL.search(key) or _CONTROL.search(value)
            for key, values in request.GET.lists()
            for value in values
        ):
            return _refusal(
                request,
                400,
                "The address contains a control character (such as NUL); remove it.",
            )
        return self.get_response(request)


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _refusal(request: HttpRequest, status: int, message: str) -> HttpResponse:
    if request.path.startswith("/api/") or "json" in request.META.get("HTTP_ACCEPT", ""):
        # The API's error contract (docs/api.md): 400 bodies list what to change per field.
        body = {"errors": {"address": [message]}} if status == 400 else {"detail": message}
        return JsonResponse(body, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
