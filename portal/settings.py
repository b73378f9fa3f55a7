"""IRSA Portal settings: every value comes from the environment, with the defaults listed here.

Read top to bottom; the README lists the same variables. Secrets (SECRET_KEY, passwords inside
DATABASE_URL, AWS credentials) only ever come from the environment.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false or yes/no.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from exc


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# --- Core -----------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
# Management commands that neither serve requests nor sign anything (sessions, CSRF, password
# resets) run without SECRET_KEY: previews and lints are offline tools, and DRF tokens are random.
NO_SECRET_COMMANDS = ("render_policies", "lint_policy", "drf_create_token")
_COMMAND = sys.argv[1] if len(sys.argv) > 1 and Path(sys.argv[0]).name == "manage.py" else ""
if not SECRET_KEY and _COMMAND in NO_SECRET_COMMANDS:
    # Random per process: nothing signed with it can outlive or leave the command.
    SECRET_KEY = "unsigned-command-" + secrets.token_urlsafe(32)
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment (or DEBUG=1 for local "
            "development, which uses a throwaway key)."
        )
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production"  # noqa: S105 - DEBUG only
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "provisioning",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "provisioning.api.errors.RequestTooLargeMiddleware",  # API bodies over the limit: JSON 413
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite is only the zero-setup local default; PostgreSQL everywhere else (tests included).
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous request gets 401 with `WWW-Authenticate: Token`, not a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "provisioning.api.pagination.Pagination",  # ?page_size=
    "PAGE_SIZE": 100,
    # SpecError → 400 {"errors": {path: [messages]}}, TransitionError/RunConflict → 409.
    "EXCEPTION_HANDLER": "provisioning.api.views.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The schema documents each operation once, under /api/v1/ (provisioning/api/schema.py).
SPECTACULAR_SETTINGS = {
    "PREPROCESSING_HOOKS": ["provisioning.api.schema.only_v1"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "provisioning.api.schema.complete",
    ],
    "COMPONENT_SPLIT_REQUEST": True,  # request bodies typed apart from answers (read-only ids)
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # the Run row is the record of truth, not a result backend
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3300)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A web request that enqueues a run must not hang on a dead broker: the run stays queued and the
# dispatcher sends it once the broker is back.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5}
# Broker outages (docs/deploy.md, "Guarantees"). kombu 5.7.0's Redis transport, with its default
# ack emulation, crashes a worker that loses Redis while it holds an unacknowledged message (an
# acks_late task in flight) and has a BRPOP outstanding (a free pool slot): closing the dead
# channel first re-reads the BRPOP, which raises, so the unacked message is only restored by the
# second close, after kombu has cleared the transport's client -> AttributeError 'hostname',
# "Unrecoverable error", exit. A late ack on the old channel fails the same way. Without ack
# emulation the unacked set lives in the worker's memory only: restoring and acking never touch
# Redis through the dead channel, so the worker reconnects and the task finishes. What emulation
# gave (redelivery of a dead worker's messages) the Run row already covers: an unclaimed run stays
# queued for the dispatcher, a claimed one is adopted or reaped. No newer kombu exists (5.7.0).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "ack_emulation": False,
}
# Keep reconnecting however long Redis is away (the default gives up after 100 tries, ~50 min).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Never cancel a running Terraform because the broker went away (Celery 6 flips this default).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
RUN_HEARTBEAT_TIMEOUT = env_int("RUN_HEARTBEAT_TIMEOUT", 300)  # seconds without a heartbeat
RUN_REDISPATCH_AFTER = env_int("RUN_REDISPATCH_AFTER", 60)  # seconds a run may sit queued
# A stale run on another host is left that long for a worker there to adopt its Terraform.
RUN_FOREIGN_HOST_TIMEOUT = env_int("RUN_FOREIGN_HOST_TIMEOUT", 3 * 3600)
RUN_WORKDIR_MAX_AGE = env_int("RUN_WORKDIR_MAX_AGE", 24 * 3600)  # then a final run's dir goes
CELERY_BEAT_SCHEDULE = {
    "reap-interrupted-runs": {"task": "provisioning.reap_interrupted_runs", "schedule": 60.0},
    "dispatch-queued-runs": {"task": "provisioning.dispatch_queued_runs", "schedule": 30.0},
    "sweep-run-workdirs": {"task": "provisioning.sweep_run_workdirs", "schedule": 3600.0},
    "check-drift": {
        "task": "provisioning.check_drift",
        "schedule": float(env_int("DRIFT_CHECK_INTERVAL", 6 * 3600)),
    },
    # The node role audit runs on the drift checks' schedule: both look for changes made by hand.
    "audit-node-roles": {
        "task": "provisioning.audit_node_roles",
        "schedule": float(env_int("DRIFT_CHECK_INTERVAL", 6 * 3600)),
    },
}

# --- Terraform and AWS ----------------------------------------------------------------------
TERRAFORM_BIN = os.environ.get("TERRAFORM_BIN", "")  # empty: `terraform` on PATH, else the fallback
TERRAFORM_PLUGIN_MIRROR = os.environ.get("TERRAFORM_PLUGIN_MIRROR", "/opt/tf-plugins")
TERRAFORM_WORK_DIR = Path(os.environ.get("TERRAFORM_WORK_DIR", VAR_DIR / "terraform"))
# auto: the pg backend when the portal's database is PostgreSQL, else a local state directory.
TERRAFORM_BACKEND = os.environ.get("TERRAFORM_BACKEND", "auto")
# How long a run waits for a workspace's state lock before failing with the lock error.
TERRAFORM_LOCK_TIMEOUT = os.environ.get("TERRAFORM_LOCK_TIMEOUT", "10s")
TERRAFORM_STATE_BUCKET = os.environ.get("TERRAFORM_STATE_BUCKET", "")
TERRAFORM_LOCK_TABLE = os.environ.get("TERRAFORM_LOCK_TABLE", "")
AWS_REGION = os.environ.get("AWS_REGION", "us-east-1")
# Set only when the local sandbox is the target; production leaves it empty.
AWS_ENDPOINT_URL = os.environ.get("AWS_ENDPOINT_URL", "")
IRSA_PERMISSIONS_BOUNDARY_ARN = os.environ.get("IRSA_PERMISSIONS_BOUNDARY_ARN", "")
RUN_LOG_MAX_BYTES = env_int("RUN_LOG_MAX_BYTES", 1_000_000)

# --- Verification after apply (provisioning.verification) -----------------------------------
# Prove every apply live: the role assumed as its pods would, the access matrix probed.
VERIFY_AFTER_APPLY = env_bool("VERIFY_AFTER_APPLY", True)
# Where the worker gets service-account tokens (the sandbox's /_sandbox/oidc/token). Empty (real
# AWS, where no one can mint a pod's token): the role is read back and IAM's simulator is asked.
IRSA_TOKEN_MINT_URL = os.environ.get("IRSA_TOKEN_MINT_URL", "")

# --- Notifications (provisioning.notifications) ---------------------------------------------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "irsa-portal@localhost")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))  # filebased backend
# Security's addresses for failed verifications, besides the security group's members.
SECURITY_NOTIFY_EMAILS = env_list("SECURITY_NOTIFY_EMAILS", "")
# Links in notifications point here (the portal's address as its users reach it).
PORTAL_BASE_URL = os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Optional Slack-compatible incoming webhook: every change-request notification is also posted
# there as {"text": ...}. Empty: none. A secret (the URL is the credential): environment only.
NOTIFY_SLACK_WEBHOOK_URL = os.environ.get("NOTIFY_SLACK_WEBHOOK_URL", "")
# Webhook retries wait 1x, 2x, 4x ... this (capped at 10 minutes); six attempts in all.
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", 10)

# --- Security review ------------------------------------------------------------------------
# Namespaces no microservice may trust into: the cluster's own workloads run there.
SYSTEM_NAMESPACES = env_list("SYSTEM_NAMESPACES", "kube-system,kube-public,kube-node-lease,default")
# Approve, without a human, change requests whose analysis shows only removed access.
AUTO_APPROVE_NO_NEW_ACCESS = env_bool("AUTO_APPROVE_NO_NEW_ACCESS", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"expected_refusals": {"()": "portal.log_filters.ExpectedRefusalsOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"filters": ["expected_refusals"]}},
}
