"""The home page's reads: a microservice's state in one word (also the lists' status column and
filter), and the dashboard's sections. Each section is one query on annotated rows (plus a count),
so the page costs the same number of queries whatever the number of services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Exists,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from provisioning.models import (
    OPEN_CHANGE_STATUSES,
    ChangeRequest,
    ChangeStatus,
    Microservice,
    Run,
    RunKind,
    RunStatus,
    Team,
    Workspace,
    WorkspaceStatus,
)
from provisioning.permissions import is_reviewer
from provisioning.selectors.changes import change_request_review_queue
from provisioning.selectors.microservices import microservice_list_for_user
from provisioning.selectors.runs import run_list_for_user

# A microservice's state, worst first: what its owners should look at.
SERVICE_STATES = {
    "decommissioned": "Decommissioned",
    "failed": "Last run failed",
    "drifted": "Drift detected",
    "draft": "Change in draft",
    "in_review": "Change in review",
    "applying": "Change being applied",
    "live": "Live",
    "rejected": "Rejected",
    "new": "Not applied yet",
}
DASHBOARD_LIMIT = 20


@dataclass(frozen=True)
class MicroserviceFilters:
    team: str = ""
    cluster: str = ""
    state: str = ""  # a key of SERVICE_STATES
    search: str = ""  # part of the name, namespace or description


def microservice_rows_for_user(
    *, user: Any, filters: MicroserviceFilters | None = None
) -> QuerySet[Microservice]:
    """The visible microservices annotated with ``state`` and ``open_change`` (status of the open
    change request, if any), filtered, ordered by name."""
    qs = _with_state(microservice_list_for_user(user=user))
    return _filter_services(qs, filters or MicroserviceFilters())


def _workspace_exists(status: str) -> Exists:
    return Exists(Workspace.objects.filter(microservice=OuterRef("pk"), status=status))


def _with_state(qs: QuerySet[Microservice]) -> QuerySet[Microservice]:
    changes = ChangeRequest.objects.filter(microservice=OuterRef("pk")).order_by("-pk")
    open_change = changes.filter(status__in=OPEN_CHANGE_STATUSES)
    qs = qs.annotate(
        open_change=Subquery(open_change.values("status")[:1]),
        open_change_id=Subquery(open_change.values("pk")[:1]),
        last_change=Subquery(changes.values("status")[:1]),
    )
    state = Case(
        When(decommissioned_at__isnull=False, then=Value("decommissioned")),
        When(_workspace_exists(WorkspaceStatus.FAILED), then=Value("failed")),
        When(_workspace_exists(WorkspaceStatus.DRIFTED), then=Value("drifted")),
        When(open_change=ChangeStatus.DRAFT, then=Value("draft")),
        When(
            open_change__in=(ChangeStatus.SUBMITTED, ChangeStatus.PLANNED), then=Value("in_review")
        ),
        When(
            open_change__in=(ChangeStatus.APPROVED, ChangeStatus.APPLYING), then=Value("applying")
        ),
        When(_workspace_exists(WorkspaceStatus.APPLIED), then=Value("live")),
        When(last_change=ChangeStatus.REJECTED, then=Value("rejected")),
        default=Value("new"),
        output_field=CharField(),
    )
    return qs.annotate(state=state)


def _filter_services(
    qs: QuerySet[Microservice], filters: MicroserviceFilters
) -> QuerySet[Microservice]:
    if filters.team:
        qs = qs.filter(team__name=filters.team)
    if filters.cluster:
        on_cluster = Workspace.objects.filter(
            microservice=OuterRef("pk"), cluster__name=filters.cluster
        )
        qs = qs.filter(Exists(on_cluster))
    if filters.state:
        qs = qs.filter(state=filters.state)
    if filters.search:
        term = filters.search.strip()
        qs = qs.filter(
            Q(name__icontains=term) | Q(namespace__icontains=term) | Q(description__icontains=term)
        )
    return qs.order_by("name")


def change_request_waiting_since(qs: QuerySet[ChangeRequest]) -> QuerySet[ChangeRequest]:
    """Annotate ``waiting_since``: when the request's newest plans finished (it became
    reviewable then), else its creation."""
    plans_done = (
        Run.objects.filter(change_request=OuterRef("pk"), kind=RunKind.PLAN)
        .values("change_request")
        .annotate(done=Max("finished_at"))
        .values("done")
    )
    return qs.annotate(plans_finished_at=Subquery(plans_done[:1]))


def review_queue_with_age(*, user: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """The review queue (others' planned requests), oldest first, each with its age."""
    queue = change_request_waiting_since(
        change_request_review_queue(user=user).exclude(created_by=user)
    )
    if limit is not None:
        queue = queue[:limit]
    now = timezone.now()
    rows = []
    for change in queue:
        since = change.plans_finished_at or change.created_at
        rows.append({"change": change, "waiting_since": since, "age": now - since})
    return rows


def dashboard_for_user(*, user: Any) -> dict[str, Any]:
    """The home page: my teams' services, requests waiting on me, failed runs, drift, and for
    reviewers the queue. Each list is cut at ``DASHBOARD_LIMIT`` rows with its full count."""
    # Members see their teams' services, so no visibility filter (nor DISTINCT) is needed.
    my_teams = Team.objects.filter(members=user).values("pk")
    mine = (
        _with_state(Microservice.objects.filter(team__in=my_teams))
        .order_by("name")
        .select_related("team")
        .prefetch_related(
            Prefetch(
                "workspaces",
                queryset=Workspace.objects.select_related("cluster").order_by("cluster__name"),
            )
        )
    )
    waiting = (
        ChangeRequest.objects.filter(microservice__team__in=my_teams)
        .annotate(confirm_data_loss=_awaits_data_loss_confirmation())
        .filter(Q(status__in=(ChangeStatus.DRAFT, ChangeStatus.FAILED)) | Q(confirm_data_loss=True))
        .select_related("microservice", "created_by")
        .order_by("-created_at", "-pk")
    )
    failed = (
        run_list_for_user(user=user)
        .filter(status=RunStatus.FAILED)
        # A row shows none of a run's big columns (its log, plan file, analysis).
        .defer("log", "plan_file", "analysis", "spec", "plan_summary", "outputs")
        .order_by("-pk")
    )
    drifted = (
        Workspace.objects.filter(
            microservice__in=microservice_list_for_user(user=user).values("pk"),
            status=WorkspaceStatus.DRIFTED,
        )
        .select_related("microservice", "cluster")
        .order_by("microservice__name", "cluster__name")
    )
    return {
        "my_services": _section(mine),
        "waiting_on_me": _section(waiting),
        "failed_runs": _section(failed),
        "drifted_workspaces": _section(drifted),
        "review_queue": review_queue_with_age(user=user, limit=DASHBOARD_LIMIT)
        if is_reviewer(user)
        else None,
    }


def _awaits_data_loss_confirmation() -> Q:
    """Planned, unconfirmed, and a plan of it deletes a table or bucket (a re-plan clears the
    confirmation, so an unconfirmed request with such a plan is the requester's turn)."""
    deleting = Run.objects.filter(
        change_request=OuterRef("pk"),
        kind=RunKind.PLAN,
        status=RunStatus.SUCCEEDED,
        plan_summary__data_at_risk__0__isnull=False,
    )
    return Q(status=ChangeStatus.PLANNED, data_loss_confirmed_at__isnull=True) & Exists(deleting)


def _section(qs: QuerySet[Any]) -> dict[str, Any]:
    return {"rows": list(qs[:DASHBOARD_LIMIT]), "count": qs.count()}
