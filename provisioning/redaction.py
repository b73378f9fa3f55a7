"""The one redaction applied to everything the portal stores or shows from a run.

Terraform (or anything it runs) can print what it was given: the worker's AWS keys, the database
password, a broker URL with its password. Every log line, ``Run.error``, every audit event's data
and every JSON a run records goes through ``redact_text`` / ``redact_data`` before it is written,
so the API and the pages, which only read the database, never see a secret either.

Three things are masked:
- secret values: the worker's environment variables whose names say they are secret
  (``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``PGPASSWORD``, ``*_TOKEN``, ``*_PASSWORD``,
  ``SECRET_KEY`` ...), passwords inside URLs in the environment or settings (``DATABASE_URL``,
  ``CELERY_BROKER_URL``), the database password, plus any the caller knows of;
- backend configuration: connection URLs and libpq ``key=value`` pairs (host, user, sslmode ...),
  which tell a reader where the state database is and how it is reached;
- absolute server paths: the layout of the worker's disk is nobody's business; the file name is
  kept so an error still says which file it is about.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

REDACTED = "[redacted]"
BACKEND_MASK = "[backend configuration]"
PATH_MASK = "[server path]"
# Shorter values would turn ordinary words of a log into markers; real secrets are longer.
MIN_SECRET_LENGTH = 6
SECRET_NAME_WORDS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "CONN_STR", "PRIVATE_KEY", "API_KEY")
URL_NAME_WORDS = ("_URL", "_URI", "_DSN")

_URL = re.compile(r"\b(?:postgres(?:ql)?|redis|rediss|amqp|amqps|mysql|sqla\+\w+)://[^\s'\"<>]+")
_LIBPQ_PAIR = re.compile(
    r"\b(?:host|hostaddr|port|user|password|dbname|sslmode|sslcert|sslkey|sslrootcert)"
    r"=(?:'[^']*'|[^\s'\",]+)"
)
_BACKEND_FLAG = re.compile(r"-backend-config=(?:'[^']*'|\S+)")
# An absolute path under a server's usual top directories (not a URL's path such as /login/, not
# an ARN's ``role/irsa/x``).
_SERVER_ROOTS = (
    "tmp|home|srv|opt|var|usr|etc|root|run|mnt|proc|work|app|data|nix|lib|lib64|bin|sbin|"
    "private|Users|builds|workspace"
)
_PATH = re.compile(rf"(?<![\w:/.~-])/(?:{_SERVER_ROOTS})/(?:[\w.@+-]+/)*([\w.@+-]*)")


def secret_values(*, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every secret this process knows of, longest first (so a longer one is masked whole)."""
    from django.conf import settings  # late: pure callers pass ``environ`` and no settings

    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for name, value in environ.items():
        upper = name.upper()
        if any(word in upper for word in SECRET_NAME_WORDS) and not upper.endswith("_FILE"):
            found.add(value)
        if "://" in value:
            found.update(_url_secrets(value))
    if settings.configured:
        found.add(getattr(settings, "SECRET_KEY", "") or "")
        for database in getattr(settings, "DATABASES", {}).values():
            found.add(database.get("PASSWORD") or "")
        for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DATABASE_URL"):
            found.update(_url_secrets(str(getattr(settings, name, "") or "")))
    return sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def _url_secrets(value: str) -> list[str]:
    try:
        password = urlsplit(value).password
    except ValueError:
        return []
    return [password, unquote(password)] if password else []


def redact_text(
    text: str, *, extra_secrets: Iterable[str] = (), secrets: list[str] | None = None
) -> str:
    """``text`` with secrets, backend configuration and absolute server paths masked."""
    if not text:
        return text
    values = secret_values() if secrets is None else secrets
    extra = sorted((s for s in extra_secrets if s and len(s) >= 4), key=len, reverse=True)
    for value in (*extra, *values):
        if value in text:
            text = text.replace(value, REDACTED)
    text = _BACKEND_FLAG.sub(f"-backend-config={BACKEND_MASK}", text)
    text = _URL.sub(BACKEND_MASK, text)
    text = _LIBPQ_PAIR.sub(BACKEND_MASK, text)
    return _PATH.sub(lambda match: f"{PATH_MASK}/{match.group(1)}", text)


def redact_data(value: Any, *, secrets: list[str] | None = None) -> Any:
    """``redact_text`` applied to every string inside a JSON-like value (keys included)."""
    values = secret_values() if secrets is None else secrets
    if isinstance(value, str):
        return redact_text(value, secrets=values)
    if isinstance(value, Mapping):
        return {
            redact_data(k, secrets=values): redact_data(v, secrets=values) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_data(item, secrets=values) for item in value]
    return value


class RedactingFilter(logging.Filter):
    """For the worker's and the web's own log handlers: a message (with its traceback) is
    redacted before any handler writes it, so an exception quoting Terraform's output or a
    connection error naming the database never reaches the process log in clear."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True
