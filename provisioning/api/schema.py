"""OpenAPI schema hooks: document each operation once, under /api/v1/.

The same views also answer at /api/ and without the trailing slash (for old clients and for
POSTs that cannot follow a redirect); listing those too would duplicate every operation.
"""

from __future__ import annotations

from typing import Any


def only_v1(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    return [e for e in endpoints if e[0].startswith("/api/v1/") and e[0].endswith("/")]
