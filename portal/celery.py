"""The Celery app, configured from Django settings (the CELERY_ namespace)."""

import os

from celery import Celery
from celery.signals import beat_init, celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_init.connect
@beat_init.connect
def _refuse_real_aws_without_boundary(**_: object) -> None:
    """A worker or beat against real AWS without IRSA_PERMISSIONS_BOUNDARY_ARN does not start."""
    from django.conf import settings

    from portal.startup import require_safe_aws_target

    require_safe_aws_target(settings)
