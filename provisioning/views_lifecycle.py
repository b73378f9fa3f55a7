"""Decommission and the typed confirmation of data loss: a decommission is proposed with only a
justification; once its plans (or any change's plans) delete tables or buckets, the request page
lists what each holds and the owning team types the service's name there before a reviewer can
approve."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from provisioning.forms import DataLossConfirmForm, DecommissionForm
from provisioning.iam.spec import SpecError
from provisioning.permissions import can_edit_microservice
from provisioning.services.changes import TransitionError
from provisioning.services.data_loss import change_request_confirm_data_loss
from provisioning.services.ui_support import change_request_decommission
from provisioning.views import _get_change_for_user, _get_microservice_for_user, _render_change


@login_required
@require_http_methods(["GET", "POST"])
def microservice_decommission(request: HttpRequest, name: str) -> HttpResponse:
    microservice = _get_microservice_for_user(request, name)
    if not can_edit_microservice(request.user, microservice):
        raise PermissionDenied("Only the owning team can decommission this microservice.")
    form = DecommissionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            change = change_request_decommission(
                actor=request.user,
                microservice=microservice,
                justification=form.cleaned_data["justification"],
            )
        except SpecError as exc:
            for field, errors in exc.errors.items():
                form.add_error(field if field in form.fields else None, errors)
        except TransitionError as exc:
            messages.error(request, str(exc))
            return redirect("microservice-detail", name=microservice.name)
        else:
            return redirect("change-request-detail", pk=change.pk)
    return render(
        request, "provisioning/decommission.html", {"service": microservice, "form": form}
    )


@login_required
@require_POST
def change_request_confirm_data_loss_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The requester types the service's name under the counts; a wrong name is a form error."""
    change = _get_change_for_user(request, pk)
    form = DataLossConfirmForm(request.POST)
    if form.is_valid():
        try:
            change_request_confirm_data_loss(
                actor=request.user,
                change_request=change,
                confirm_name=form.cleaned_data["confirm_name"],
            )
        except SpecError as exc:
            form.add_error("confirm_name", exc.errors.get("confirm_name", [str(exc)]))
        except TransitionError as exc:
            messages.error(request, str(exc))
            return redirect("change-request-detail", pk=change.pk)
        else:
            messages.success(request, f"Confirmed: #{change.pk} may delete the data listed.")
            return redirect("change-request-detail", pk=change.pk)
    return _render_change(request, change, confirm_form=form, status=400)
