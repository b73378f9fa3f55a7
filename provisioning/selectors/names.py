"""Which physical AWS names a spec would take that another workspace already holds."""

from __future__ import annotations

from provisioning.iam import naming
from provisioning.iam.spec import WorkspaceSpec
from provisioning.models import Microservice, PhysicalName, PhysicalNameKind


def _field(spec: WorkspaceSpec, kind: str, name: str) -> str:
    for i, resource in enumerate(spec.resources):
        if resource.kind == kind and naming.physical_name(spec, resource) == name:
            return f"resources[{i}].name"
    return "microservice"


def physical_name_conflicts(
    *, spec: WorkspaceSpec, microservice: Microservice | None
) -> dict[str, list[str]]:
    """Field path → message for every name of ``spec`` held by a workspace of another service.

    ``microservice`` is the service the spec belongs to (None while registering): its own
    workspaces may of course keep their names.
    """
    wanted = naming.all_physical_names(spec)
    held = PhysicalName.objects.select_related("workspace__microservice", "workspace__cluster")
    held = held.filter(name__in=[name for _, name in wanted])
    if microservice is not None and microservice.pk is not None:
        held = held.exclude(workspace__microservice=microservice)
    taken = {(row.kind, row.name): row.workspace for row in held}
    errors: dict[str, list[str]] = {}
    for kind, name in wanted:
        holder = taken.get((kind, name))
        if holder is None:
            continue
        owner = holder.microservice
        pending = " until its decommission is applied" if owner.decommissioned_at else ""
        errors.setdefault(_field(spec, kind, name), []).append(
            f"The {PhysicalNameKind(kind).label} name '{name}' is held by microservice "
            f"'{owner.name}' in cluster '{holder.cluster.name}'{pending}; "
            "choose another name."
        )
    return errors
