"""The API's error contract: every error is JSON, 400s as ``{"errors": {path: [messages]}}``,
the others as ``{"detail": message}`` (409s may add ``findings``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

API_PREFIX = "/api/"


@csrf_exempt  # a POST to a path that does not exist is a 404, whatever its cookies
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any unmatched path under /api/ (a typo, a non-integer id): JSON, not the HTML page."""
    return JsonResponse(
        {"detail": f"No API endpoint at {request.path}; GET /api/schema/ lists them."},
        status=404,
    )


class RequestTooLargeMiddleware:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE sent to the API is a JSON 413.

    Django would answer its HTML 400 page once something reads the body; checking the declared
    length first answers before the body is read at all.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request.path.startswith(API_PREFIX) and limit is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return JsonResponse(
                    {"detail": f"The body is {length} bytes; the limit is {limit} bytes."},
                    status=413,
                )
        return self.get_response(request)
