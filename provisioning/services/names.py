"""Claiming and releasing the physical AWS names of a workspace (``PhysicalName`` rows)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from provisioning.iam import naming
from provisioning.iam.spec import SpecError, WorkspaceSpec
from provisioning.models import PhysicalName, Workspace
from provisioning.selectors.names import physical_name_conflicts


def physical_names_claim(*, workspace: Workspace, spec: WorkspaceSpec) -> None:
    """Hold every name ``spec`` derives for ``workspace``; raise ``SpecError`` on a clash.

    Validation already checked the names; the unique constraint settles a race between two
    requests validated at the same moment, and the loser gets the same message, not a 500.
    """
    conflicts = physical_name_conflicts(spec=spec, microservice=workspace.microservice)
    if conflicts:
        raise SpecError(conflicts)
    held = set(workspace.physical_names.values_list("kind", "name"))
    missing = [
        PhysicalName(workspace=workspace, kind=kind, name=name)
        for kind, name in naming.all_physical_names(spec)
        if (kind, name) not in held
    ]
    try:
        with transaction.atomic():
            PhysicalName.objects.bulk_create(missing)
    except IntegrityError:
        raise SpecError(
            physical_name_conflicts(spec=spec, microservice=workspace.microservice)
            or {"microservice": ["Another request took one of these names just now; try again."]}
        ) from None


def physical_names_keep_only(*, workspace_id: int, spec: WorkspaceSpec | None) -> None:
    """After a successful apply the workspace holds exactly its applied spec's names (none after
    a destroy): a decommissioned service's names are free again."""
    rows = PhysicalName.objects.filter(workspace_id=workspace_id)
    if spec is None:
        rows.delete()
        return
    keep = naming.all_physical_names(spec)
    for row in rows:
        if (row.kind, row.name) not in keep:
            row.delete()
