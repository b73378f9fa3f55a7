"""Reads. Every list a user sees is filtered here."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from provisioning.models import Microservice
from provisioning.permissions import is_reviewer


def microservice_list_for_user(*, user: Any) -> QuerySet[Microservice]:
    """Developers see their teams' services; reviewers and staff see all."""
    qs = Microservice.objects.select_related("team").order_by("name")
    if user.is_staff or is_reviewer(user):
        return qs
    return qs.filter(team__members=user).distinct()
