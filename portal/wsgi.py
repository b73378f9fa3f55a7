import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

from django.conf import settings  # noqa: E402 - configured by the line above

from portal.startup import require_safe_aws_target  # noqa: E402

require_safe_aws_target(settings)  # no web app against real AWS without the boundary
