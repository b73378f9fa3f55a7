"""A small HTTP client for /api/v1/ (standard library only, so the CLI installs anywhere)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class ApiError(Exception):
    """The API refused (4xx/5xx) or could not be reached; ``body`` is its JSON answer."""

    def __init__(self, status: int | None, body: Any, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class Client:
    def __init__(self, url: str, token: str, timeout: float = 60) -> None:
        self.base = url.rstrip("/") + "/api/v1/"
        self.token = token
        self.timeout = timeout

    def get(self, path: str, **query: Any) -> Any:
        params = {k: v for k, v in query.items() if v is not None}
        suffix = "?" + urllib.parse.urlencode(params) if params else ""
        return self.request("GET", path + suffix)

    def post(self, path: str, body: Any = None, idempotency_key: str | None = None) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self.request("POST", path, json.dumps(body or {}).encode(), headers=headers)

    def put(self, path: str, data: bytes, content_type: str) -> Any:
        return self.request("PUT", path, data, content_type=content_type)

    def request(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Any:
        url = urllib.parse.urljoin(self.base, path.lstrip("/"))
        if not url.startswith(("http://", "https://")):
            raise ApiError(None, None, f"IRSA_URL must be an http(s) URL, not {self.base!r}.")
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        request.add_header("Authorization", f"Token {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            body = _json_or_text(exc.read())
            raise ApiError(exc.code, body, describe(exc.code, body)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(None, None, f"Cannot reach {self.base}: {exc}") from None
        return _json_or_text(raw)


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def describe(status: int, body: Any) -> str:
    """One readable message from the API's error shapes."""
    if isinstance(body, dict) and isinstance(body.get("errors"), dict):
        lines = [f"{path or '(body)'}: {' '.join(msgs)}" for path, msgs in body["errors"].items()]
        return f"HTTP {status}: invalid input:\n  " + "\n  ".join(lines)
    if isinstance(body, dict) and "detail" in body:
        return f"HTTP {status}: {body['detail']}"
    return f"HTTP {status}: {body}"
