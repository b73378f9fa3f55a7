"""Terminal output: short, readable lines; ``--json`` prints the API's answers instead."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TextIO


class Printer:
    def __init__(self, *, as_json: bool, stream: TextIO) -> None:
        self.as_json = as_json
        self.stream = stream

    def json(self, data: Any) -> None:
        self.stream.write(json.dumps(data, indent=2, sort_keys=True) + "\n")

    def line(self, text: str) -> None:
        if not self.as_json:
            self.stream.write(text + "\n")

    def emit(self, data: Any, render: Callable[[Any], str]) -> None:
        if self.as_json:
            self.json(data)
        else:
            self.stream.write(render(data).rstrip("\n") + "\n")

    def log_chunk(self, chunk: dict[str, Any]) -> None:
        if self.as_json:
            self.json(chunk)
        else:
            self.stream.write(chunk["text"])
        self.stream.flush()


def whoami(me: dict[str, Any]) -> str:
    roles = [r for r, on in (("staff", me["is_staff"]), ("reviewer", me["is_reviewer"])) if on]
    teams = ", ".join(me["teams"]) or "none"
    return f"{me['username']} (teams: {teams}{'; ' + ', '.join(roles) if roles else ''})"


def change_headline(change: dict[str, Any]) -> str:
    return (
        f"change request #{change['id']}: {change['kind']} {change['microservice']} "
        f"is {change['status']}"
    )


def status(data: dict[str, Any]) -> str:
    service = data["microservice"]
    lines = [f"{service['name']} (team {service['team']}, namespace {service['namespace']})"]
    for w in service["workspaces"]:
        role = w["role_arn"] or "no role yet"
        lines.append(
            f"  {w['cluster']}: {w['status']}, {role}, verified {w['verification_status']}"
        )
    if not service["workspaces"]:
        lines.append("  no workspaces yet")
    latest = data["latest_change_request"]
    lines.append(change_headline(latest) if latest else "no change requests")
    return "\n".join(lines)


def review(change: dict[str, Any]) -> str:
    """Per cluster: the plan, the grant diff and the findings; then the verdict."""
    lines = [change_headline(change)]
    data = change.get("review") or {}
    for w in data.get("workspaces", []):
        lines.append(f"{w['cluster']}: plan run {w['run']} {w['status']}")
        analysis = w.get("analysis") or {}
        if analysis.get("error"):
            lines.append(f"  analysis: {analysis['error']}")
        diff = analysis.get("diff") or {}
        for sign, part in (("+", "added"), ("-", "removed")):
            lines.extend(f"  {sign} {grant}" for grant in _grants(diff.get(part) or {}))
        for f in analysis.get("findings", []):
            lines.append(f"  [{f['severity']}] {f['rule']} {f['location']}: {f['message']}")
    summary = data.get("summary") or {}
    if summary:
        verdict = "BLOCKED (high finding)" if summary.get("blocking") else "no blocking finding"
        lines.append(f"{summary.get('classification_label', '')}: {verdict}")
    lines.extend(_data_loss(change.get("data_loss") or {}, change))
    return "\n".join(lines)


def _data_loss(loss: dict[str, Any], change: dict[str, Any]) -> list[str]:
    """What the plans delete and, while unconfirmed, the command that confirms it."""
    lines = []
    for w in loss.get("at_risk", []):
        for e in w["entries"]:
            held = f"{e['items']} items" if "items" in e else f"{e.get('objects', '?')} objects"
            lines.append(f"DELETES DATA {w['cluster']}: {e['kind']} {e['name']} ({held})")
    if loss.get("waiting"):
        lines.append(
            f"waits for the data loss to be confirmed: irsa confirm-data-loss {change['id']} "
            f"--name {change['microservice']}"
        )
    return lines


def _grants(grants: dict[str, list[dict[str, Any]]]) -> list[str]:
    out = [f"{g['action']} on {g['resource']}{_conditions(g)}" for g in grants.get("identity", [])]
    out += [
        f"trust {g['namespace']}:{g['service_account']} via {g['provider']}"
        for g in grants.get("trust", [])
    ]
    out += [
        f"key: {g['principal']} may {g['action']}{_conditions(g)}" for g in grants.get("key", [])
    ]
    return out


def _conditions(grant: dict[str, Any]) -> str:
    """A grant's conditions, which tell two grants of one action apart (the key used only
    through DynamoDB, or only through S3): `` if kms:ViaService StringEquals a, b``."""
    parts = [
        f"{c['key']} {c['operator']} {', '.join(str(v) for v in c.get('values') or [])}"
        for c in grant.get("conditions") or []
    ]
    return f" if {' and '.join(parts)}" if parts else ""
