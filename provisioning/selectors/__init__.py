"""Reads for the pages, the REST API and the services, one module per area.

Everything a user may see is derived from ``microservice_list_for_user``: a change request, a
workspace or a run is visible exactly when its microservice is. The names are re-exported here so
callers write ``from provisioning.selectors import ...`` without knowing the module layout.
"""

from provisioning.selectors.audit import (
    AuditFilters,
    audit_can_see_all,
    audit_event_list_for_microservice,
    audit_event_list_for_user,
)
from provisioning.selectors.changes import (
    change_request_failures,
    change_request_latest_plans,
    change_request_list_for_user,
    change_request_review_queue,
)
from provisioning.selectors.dashboard import (
    SERVICE_STATES,
    MicroserviceFilters,
    dashboard_for_user,
    microservice_rows_for_user,
    review_queue_with_age,
)
from provisioning.selectors.dry_run import microservice_dry_run
from provisioning.selectors.inventory import (
    INVENTORY_COLUMNS,
    INVENTORY_KINDS,
    InventoryFilters,
    inventory_rows,
    workspace_inventory_for_user,
)
from provisioning.selectors.microservices import (
    cluster_list,
    microservice_get_for_user,
    microservice_list_for_user,
    microservice_live_spec,
    team_list_for_user,
)
from provisioning.selectors.namespaces import namespace_conflicts
from provisioning.selectors.review import (
    account_neighbours,
    change_request_review,
    plan_run_analysis,
    workspace_live_spec,
    workspace_neighbours,
)
from provisioning.selectors.runs import run_list_for_user

__all__ = [
    "INVENTORY_COLUMNS",
    "INVENTORY_KINDS",
    "SERVICE_STATES",
    "AuditFilters",
    "InventoryFilters",
    "MicroserviceFilters",
    "account_neighbours",
    "audit_can_see_all",
    "audit_event_list_for_microservice",
    "audit_event_list_for_user",
    "change_request_failures",
    "change_request_latest_plans",
    "change_request_list_for_user",
    "change_request_review",
    "change_request_review_queue",
    "cluster_list",
    "dashboard_for_user",
    "inventory_rows",
    "microservice_dry_run",
    "microservice_get_for_user",
    "microservice_list_for_user",
    "microservice_live_spec",
    "microservice_rows_for_user",
    "namespace_conflicts",
    "plan_run_analysis",
    "review_queue_with_age",
    "run_list_for_user",
    "team_list_for_user",
    "workspace_inventory_for_user",
    "workspace_live_spec",
    "workspace_neighbours",
]
