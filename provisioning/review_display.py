"""How the review page lays out ``selectors.change_request_review``: grant diff rows, findings,
matrix verdicts and line diffs of the policies against what is live. Pure: data in, data out."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

POLICIES = (
    ("identity_policy", "Identity policy"),
    ("trust_policy", "Trust policy"),
    ("key_policy", "Key policy"),
)
SECTIONS = (("identity", "identity"), ("trust", "trust"), ("key", "key"))
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def pretty(value: Any) -> list[str]:
    return [] if value is None else json.dumps(value, indent=2, sort_keys=True).splitlines()


def policy_diff(live: Any, proposed: Any) -> list[dict[str, str]]:
    """Every line of the proposed policy (or of the live one, when it goes away), each marked
    ``add``, ``remove`` or ``same``; a create is all additions."""
    lines = []
    for line in difflib.ndiff(pretty(live), pretty(proposed)):
        tag, text = line[:2], line[2:]
        if tag == "? ":  # ndiff's intraline hints: not part of either document
            continue
        kind = {"+ ": "add", "- ": "remove"}.get(tag, "same")
        lines.append({"kind": kind, "text": text})
    return lines


def grant_text(section: str, grant: Mapping[str, Any]) -> str:
    if section == "trust":
        return (
            f"system:serviceaccount:{grant['namespace']}:{grant['service_account']} "
            f"(aud {grant['audience']}) via {grant['provider']}"
        )
    if section == "identity":
        text = f"{grant['action']} on {grant['resource']}"
    else:
        text = f"{grant['principal']} may {grant['action']}"
    for c in grant.get("conditions") or []:
        text += f" if {c['operator']} {c['key']} = {', '.join(c['values'])}"
    return text


def grant_rows(workspaces: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Added and removed grants of every workspace, one row each (unchanged ones are counted)."""
    rows = []
    for w in workspaces:
        diff = (w["analysis"] or {}).get("diff") or {}
        for change in ("added", "removed"):
            for section, label in SECTIONS:
                for grant in (diff.get(change) or {}).get(section) or []:
                    rows.append(
                        {
                            "cluster": w["cluster"],
                            "change": change,
                            "section": label,
                            "grant": grant_text(section, grant),
                        }
                    )
    return rows


def unchanged_count(workspaces: list[dict[str, Any]]) -> int:
    total = 0
    for w in workspaces:
        unchanged = ((w["analysis"] or {}).get("diff") or {}).get("unchanged") or {}
        total += sum(len(v) for v in unchanged.values())
    return total


def finding_rows(workspaces: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = [
        {**f, "cluster": w["cluster"]}
        for w in workspaces
        for f in (w["analysis"] or {}).get("findings") or []
    ]
    return sorted(rows, key=lambda f: (SEVERITY_ORDER.get(f["severity"], 9), f["rule"]))


def matrix_view(analysis: Mapping[str, Any] | None) -> dict[str, Any] | None:
    matrix = (analysis or {}).get("matrix")
    if not matrix:
        return None
    return {
        "verdict": matrix["verdict"],
        "counts": matrix["counts"],
        "failures": [r for r in matrix["rows"] if not r["ok"]],
    }


def policy_views(analysis: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The three policies with their line diff against the live ones."""
    if not analysis or "error" in analysis:
        return []
    proposed = analysis.get("policies") or {}
    live = analysis.get("live_policies") or {}
    views = []
    for key, label in POLICIES:
        lines = policy_diff(live.get(key), proposed.get(key))
        views.append(
            {
                "label": label,
                "lines": lines,
                "added": sum(line["kind"] == "add" for line in lines),
                "removed": sum(line["kind"] == "remove" for line in lines),
            }
        )
    return views


def review_summary(review: Mapping[str, Any]) -> dict[str, Any]:
    """The top of the page: classification, grant diff, findings and matrix verdicts."""
    workspaces = review["workspaces"]
    return {
        "summary": review["summary"],
        "grant_rows": grant_rows(workspaces),
        "unchanged": unchanged_count(workspaces),
        "findings": finding_rows(workspaces),
        "matrices": [
            {"cluster": w["cluster"], **m}
            for w in workspaces
            if (m := matrix_view(w["analysis"])) is not None
        ],
        "data_protection": review.get("data_protection") or [],
        "errors": [
            {"cluster": w["cluster"], "error": w["analysis"]["error"]}
            for w in workspaces
            if w["analysis"] and "error" in w["analysis"]
        ],
    }


def protection_label(kind: str, settings: Mapping[str, Any]) -> str:
    """How a resource's data is protected, in a few words (the service page's resource table)."""
    if kind == "dynamodb_table":
        return (
            f"deletion protection {'on' if settings.get('deletion_protection') else 'off'} · "
            f"point-in-time recovery {'on' if settings.get('point_in_time_recovery') else 'off'}"
        )
    if kind == "s3_bucket":
        versioning = "on" if settings.get("versioning", True) else "off"
        return f"versioning {versioning} · never force-destroyed"
    return ""
