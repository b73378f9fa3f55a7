"""What a user may do. UI and API both ask these predicates; neither re-implements a rule."""

from __future__ import annotations

from typing import Any

from provisioning.models import ChangeRequest, ChangeStatus, Microservice

SECURITY_GROUP = "security"


def is_reviewer(user: Any) -> bool:
    return bool(user.is_authenticated and user.groups.filter(name=SECURITY_GROUP).exists())


def can_edit_microservice(user: Any, microservice: Microservice) -> bool:
    if not user.is_authenticated:
        return False
    return user.is_staff or microservice.team.members.filter(pk=user.pk).exists()


def can_review(user: Any, change_request: ChangeRequest) -> bool:
    """Security reviewers decide on other people's requests, never their own (whatever the
    state: whether the request is still planned is a 409 for the service, not a 403)."""
    return is_reviewer(user) and change_request.created_by_id != user.pk


def can_approve(user: Any, change_request: ChangeRequest) -> bool:
    """Security reviewers approve planned requests, never their own."""
    return can_review(user, change_request) and change_request.status == ChangeStatus.PLANNED


def can_verify_workspace(user: Any, workspace: Any) -> bool:
    """Owners, security reviewers and staff may ask for a workspace to be verified again."""
    return is_reviewer(user) or can_edit_microservice(user, workspace.microservice)
