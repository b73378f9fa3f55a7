"""Grant diff between what is live and what a change request proposes, and its classification."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from provisioning.analysis.grants import EMPTY, WorkspaceGrants


class Classification(StrEnum):
    NO_NEW_ACCESS = "no_new_access"
    NEW_ACCESS_OWN = "new_access_own_resources"
    NEW_TRUST_SUBJECT = "new_trust_subject"
    DECOMMISSION = "decommission"

    @property
    def label(self) -> str:
        return CLASSIFICATION_LABELS[self]


CLASSIFICATION_LABELS = {
    Classification.NO_NEW_ACCESS: "No new access (removals only, same principals)",
    Classification.NEW_ACCESS_OWN: "New access on the service's own resources",
    Classification.NEW_TRUST_SUBJECT: "New trust subject (a service account can assume the role)",
    Classification.DECOMMISSION: "Decommission (deletes data)",
}


@dataclass(frozen=True)
class GrantDiff:
    added: WorkspaceGrants
    removed: WorkspaceGrants
    unchanged: WorkspaceGrants

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added.to_dict(),
            "removed": self.removed.to_dict(),
            "unchanged": self.unchanged.to_dict(),
        }


def diff_grants(live: WorkspaceGrants | None, proposed: WorkspaceGrants | None) -> GrantDiff:
    """Added, removed and unchanged grants; None on either side means "grants nothing"."""
    old, new = live or EMPTY, proposed or EMPTY
    return GrantDiff(
        added=WorkspaceGrants(
            new.identity - old.identity, new.trust - old.trust, new.key - old.key
        ),
        removed=WorkspaceGrants(
            old.identity - new.identity, old.trust - new.trust, old.key - new.key
        ),
        unchanged=WorkspaceGrants(
            old.identity & new.identity, old.trust & new.trust, old.key & new.key
        ),
    )


def classify_change(diffs: Sequence[GrantDiff], *, decommission: bool) -> Classification:
    """The riskiest category any workspace's diff falls into.

    Precedence: decommission (deletes data) > new trust subject > new access > no new access.
    """
    return classify_additions(
        new_trust=any(d.added.trust for d in diffs),
        new_access=any(d.added.identity or d.added.key for d in diffs),
        decommission=decommission,
    )


def classify_additions(*, new_trust: bool, new_access: bool, decommission: bool) -> Classification:
    if decommission:
        return Classification.DECOMMISSION
    if new_trust:
        return Classification.NEW_TRUST_SUBJECT
    if new_access:
        return Classification.NEW_ACCESS_OWN
    return Classification.NO_NEW_ACCESS
