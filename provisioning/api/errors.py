"""The API's error contract: every error is JSON, 400s as ``{"errors": {path: [messages]}}``,
the others as ``{"detail": message}`` (409s may add ``findings``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

API_PREFIX = "/api/"


@csrf_exempt  # a POST to a path that does not exist is a 404, whatever its cookies
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any unmatched path under /api/ (a typo, a non-integer id): JSON, not the HTML page."""
    return JsonResponse(
        {"detail": f"No API endpoint at {request.path}; GET /api/schema/ lists them."},
        status=404,
    )
