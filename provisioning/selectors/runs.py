"""Reads about runs. A run is visible exactly when its workspace's microservice is."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from provisioning.models import Run
from provisioning.selectors.microservices import microservice_list_for_user


def run_list_for_user(*, user: Any) -> QuerySet[Run]:
    visible = microservice_list_for_user(user=user).values("pk")
    return Run.objects.filter(workspace__microservice__in=visible).select_related(
        "workspace", "workspace__cluster", "workspace__microservice"
    )
