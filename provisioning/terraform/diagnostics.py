"""The short form of a failed Terraform run: each diagnostic's summary and resource address.

Terraform prints an error as ``Error: <summary>`` then, for a resource, ``with <address>,``. A
reader of a failed change request needs those two lines, not the paragraph around them. Pure.
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERROR = re.compile(r"^[│╷╵|\s]*Error: (?P<summary>.+?)\s*$")
_WITH = re.compile(r"^[│╷╵|\s]*with (?P<address>[^,\s]+),\s*$")
MAX_DIAGNOSTICS = 5


def diagnostic_summaries(text: str) -> list[dict[str, str]]:
    """Each ``Error:`` with the address that follows it (``""`` when none), first five."""
    found: list[dict[str, str]] = []
    for line in _ANSI.sub("", text or "").splitlines():
        error = _ERROR.match(line)
        if error:
            found.append({"summary": error.group("summary"), "address": ""})
            continue
        address = _WITH.match(line)
        if address and found and not found[-1]["address"]:
            found[-1]["address"] = address.group("address")
    unique = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique[:MAX_DIAGNOSTICS]


def failure_summary(*, error: str, log: str) -> list[dict[str, str]]:
    """From the full log when it has diagnostics, else from the stored error message."""
    found = diagnostic_summaries(log) or diagnostic_summaries(error)
    if found:
        return found
    first = (error or "").strip().splitlines()
    return [{"summary": first[0][:300], "address": ""}] if first else []
