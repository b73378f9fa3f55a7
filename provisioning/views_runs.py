"""A run's page and the endpoints its live view polls: the status line (htmx swaps it), the log
since an offset (static/portal.js appends it), and the raw log as a file."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from provisioning import selectors
from provisioning.models import ACTIVE_RUN_STATUSES, Run


def _get_run_for_user(request: HttpRequest, pk: int) -> Run:
    try:
        return selectors.run_list_for_user(user=request.user).get(pk=pk)
    except Run.DoesNotExist:
        raise Http404("No such run.") from None


@login_required
@require_GET
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _get_run_for_user(request, pk)
    return render(request, "provisioning/run_detail.html", {"run": run})


@login_required
@require_GET
def run_log(request: HttpRequest, pk: int) -> HttpResponse:
    """The status line htmx polls every 2 s while the run is queued or running."""
    run = _get_run_for_user(request, pk)
    response = render(request, "provisioning/_run_head.html", {"run": run})
    if request.GET.get("poll") and run.status not in ACTIVE_RUN_STATUSES:
        # The run just finished: reload the page so plan summaries, buttons and the folded
        # init section catch up.
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_GET
def run_log_tail(request: HttpRequest, pk: int) -> JsonResponse:
    """What the log gained since ``offset`` (characters), the new offset, and whether to poll on.

    The stored log only grows (appends in SQL), so an offset stays valid for the run's life.
    """
    run = _get_run_for_user(request, pk)
    try:
        offset = max(int(request.GET.get("offset", "0")), 0)
    except ValueError:
        return JsonResponse({"offset": ["Give a whole number of characters."]}, status=400)
    text = run.log[offset:]
    return JsonResponse(
        {
            "text": text,
            "offset": offset + len(text),
            "active": run.status in ACTIVE_RUN_STATUSES,
            "status": run.status,
            "step": run.current_step,
        }
    )


@login_required
@require_GET
def run_log_raw(request: HttpRequest, pk: int) -> HttpResponse:
    run = _get_run_for_user(request, pk)
    response = HttpResponse(run.log, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-{run.kind}.log"'
    return response
