"""The action catalog: common usage actions per resource kind and access level.

One JSON file (``terraform/modules/irsa/action_catalog.json``) read by both this module and the
irsa Terraform module, so the policy the portal previews is the policy Terraform applies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CATALOG_PATH = (
    Path(__file__).resolve().parents[2] / "terraform" / "modules" / "irsa" / "action_catalog.json"
)
ARN_TOKEN = "{arn}"  # noqa: S105 - a template token, not a secret


class CatalogError(ValueError):
    """The catalog file breaks one of its own rules; the message names the entry."""


@dataclass(frozen=True)
class CatalogStatement:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]  # patterns, each starting with ARN_TOKEN


@dataclass(frozen=True)
class AccessLevel:
    statements: tuple[CatalogStatement, ...]
    kms_actions: tuple[str, ...]


@dataclass(frozen=True)
class ResourceKind:
    name: str
    service: str
    levels: dict[str, AccessLevel]


@dataclass(frozen=True)
class Catalog:
    kinds: dict[str, ResourceKind]
    key_administration_actions: tuple[str, ...]
    key_service_grant_actions: tuple[str, ...]

    def level(self, kind: str, access: str) -> AccessLevel:
        return self.kinds[kind].levels[access]


def parse_catalog(data: dict) -> Catalog:
    """Build and check a catalog from its JSON form; refuses wildcards and foreign ARN patterns."""
    kinds = {name: _parse_kind(name, body) for name, body in sorted(data["kinds"].items())}
    key = data["kms_key"]
    admin = _checked_actions("kms_key.administration_actions", key["administration_actions"])
    grants = _checked_actions("kms_key.service_grant_actions", key["service_grant_actions"])
    sids = [s.sid for k in kinds.values() for lvl in k.levels.values() for s in lvl.statements]
    if len(sids) != len(set(sids)):
        raise CatalogError("statement sids must be unique across the catalog")
    return Catalog(kinds, admin, grants)


def _parse_kind(name: str, body: dict) -> ResourceKind:
    levels = {}
    for level_name, level in body["levels"].items():
        where = f"{name}.{level_name}"
        statements = tuple(
            CatalogStatement(
                sid=_checked_sid(where, s["sid"]),
                actions=_checked_actions(f"{where}.{s['sid']}", s["actions"]),
                resources=_checked_patterns(f"{where}.{s['sid']}", s["resources"]),
            )
            for s in level["statements"]
        )
        levels[level_name] = AccessLevel(
            statements, _checked_actions(f"{where}.kms_actions", level["kms_actions"])
        )
    return ResourceKind(name=name, service=body["service"], levels=levels)


def _checked_sid(where: str, sid: str) -> str:
    if not sid.isalnum():
        raise CatalogError(f"{where}: sid '{sid}' must be alphanumeric")
    return sid


def _checked_actions(where: str, actions: list[str]) -> tuple[str, ...]:
    for action in actions:
        service, _, name = action.partition(":")
        if "*" in action or "?" in action or not service or not name.isalnum():
            raise CatalogError(f"{where}: '{action}' is not an exact action name")
    if list(actions) != sorted(set(actions)):
        raise CatalogError(f"{where}: actions must be sorted and unique")
    return tuple(actions)


def _checked_patterns(where: str, patterns: list[str]) -> tuple[str, ...]:
    for pattern in patterns:
        rest = pattern.removeprefix(ARN_TOKEN)
        if rest == pattern or "{" in rest:
            raise CatalogError(f"{where}: pattern '{pattern}' must start with {ARN_TOKEN}")
        if rest not in ("", "/*", "/index/*"):
            raise CatalogError(f"{where}: '{pattern}' is not a documented sub-resource pattern")
    return tuple(patterns)


@lru_cache(maxsize=1)
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    return parse_catalog(json.loads(path.read_text()))
