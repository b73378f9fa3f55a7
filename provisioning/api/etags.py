"""ETags on detail reads: ``If-None-Match`` with the last ETag answers 304 without a body.

The tag is a hash of the JSON the client would get, so any visible change (a status, a new run,
a review) changes it, whatever field it touched.
"""

from __future__ import annotations

import hashlib
from typing import Any

from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response


class ETagMixin:
    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        if request.method in ("GET", "HEAD") and response.status_code == 200:
            digest = hashlib.sha256(JSONRenderer().render(response.data)).hexdigest()[:32]
            etag = f'"{digest}"'
            wanted = {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}
            if etag in wanted or "*" in wanted:
                response = Response(status=304)
            response["ETag"] = etag
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
