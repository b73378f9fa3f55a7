"""IRSA Portal settings: every value comes from the environment, with the defaults listed here.

Read top to bottom; the README lists the same variables. Secrets (SECRET_KEY, passwords inside
DATABASE_URL, AWS credentials) only ever come from the environment.
"""

from __future__ import annotations

import json
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
# resets) run without SECRET_KEY: previews and lints are offline tools.
NO_SECRET_COMMANDS = ("render_policies", "lint_policy")
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
    "drf_spectacular",
    "csp",
    "axes",
    "provisioning",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Oversize bodies → 413, control characters in the address → 400 (before any query runs).
    "provisioning.middleware.RequestGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: answers a locked-out login attempt.
    "axes.middleware.AxesMiddleware",
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
# Brute-force limits (django-axes): LOGIN_FAILURE_LIMIT failed logins lock the username and the
# client address out for LOGIN_LOCKOUT_MINUTES (audited as auth.locked_out); then they may retry.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Single sign-on with OpenID Connect (provisioning.sso): on when OIDC_RP_CLIENT_ID is set. The
# endpoints are the IdP's (see its /.well-known/openid-configuration). Group mapping: JSON.
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.environ.get("OIDC_RP_SCOPES", "openid email profile groups")
OIDC_AUTHENTICATION_CALLBACK_URL = "sso-callback"
LOGIN_REDIRECT_URL_FAILURE = "/login/?sso=refused"
SSO_GROUPS_CLAIM = os.environ.get("SSO_GROUPS_CLAIM", "groups")
try:  # e.g. {"okta-payments-devs": "payments"}: IdP group -> portal team name
    SSO_TEAM_GROUPS: dict[str, str] = json.loads(os.environ.get("SSO_TEAM_GROUPS") or "{}")
except ValueError as exc:
    raise ImproperlyConfigured(
        "SSO_TEAM_GROUPS must be a JSON object of IdP group -> team name, "
        'e.g. {"devs": "payments"}.'
    ) from exc
SSO_REVIEWER_GROUPS = env_list("SSO_REVIEWER_GROUPS", "")
SSO_ADMIN_GROUPS = env_list("SSO_ADMIN_GROUPS", "")
# Local password login: keep it for the demo; switch it off once everyone comes through SSO.
LOCAL_LOGIN_ENABLED = env_bool("LOCAL_LOGIN_ENABLED", True)
if OIDC_RP_CLIENT_ID:
    AUTHENTICATION_BACKENDS.append("provisioning.sso.PortalOIDCBackend")
if not LOCAL_LOGIN_ENABLED:
    AUTHENTICATION_BACKENDS.remove("django.contrib.auth.backends.ModelBackend")
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = env_int("LOGIN_LOCKOUT_MINUTES", 15) / 60  # hours, as axes takes it
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one reaching the limit locks
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "provisioning.security.lockout_response"  # 429 + Retry-After
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

# --- HTTPS and browser policy (production: DEBUG=0) ------------------------------------------
# Behind a TLS-terminating proxy, name the header it sets (e.g. X-Forwarded-Proto) so Django
# knows a request came in over HTTPS; only set it when the proxy always sets or strips it.
_PROXY_SSL_HEADER = os.environ.get("SECURE_PROXY_SSL_HEADER", "")
if _PROXY_SSL_HEADER:
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"),
        "https",
    )
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# The directive only; getting onto browsers' preload lists is a separate, deliberate step.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): scripts and styles from the portal's own static files
# only, no inline script, no eval, nothing framed, forms post back to the portal.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous request gets 401 with `WWW-Authenticate: Token`, not a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "provisioning.security.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Over-deep JSON → 400, not a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "provisioning.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "provisioning.api.pagination.Pagination",  # ?page_size=
    "PAGE_SIZE": 100,
    # SpecError → 400 {"errors": {path: [messages]}}, TransitionError/RunConflict → 409.
    "EXCEPTION_HANDLER": "provisioning.api.views.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Token and session clients alike; over the rate: 429 with Retry-After.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "120/min"),
        "user": os.environ.get("API_THROTTLE_USER", "1200/min"),
    },
}
# The schema documents each operation once, under /api/v1/ (provisioning/api/schema.py), with
# one name per choice set (several models have a `kind` and a `status`).
SPECTACULAR_SETTINGS = {
    "ENUM_NAME_OVERRIDES": {
        "ResourceKindEnum": "provisioning.models.ResourceKind",
        "ChangeKindEnum": "provisioning.models.ChangeKind",
        "ProposalKindEnum": ["change", "decommission"],
        "RunKindEnum": "provisioning.models.RunKind",
        "WorkspaceStatusEnum": "provisioning.models.WorkspaceStatus",
        "ChangeStatusEnum": "provisioning.models.ChangeStatus",
        "RunStatusEnum": "provisioning.models.RunStatus",
        "EventsEnum": "provisioning.notifications.models.WebhookEvent",
    },
    "PREPROCESSING_HOOKS": ["provisioning.api.schema.only_v1"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "provisioning.api.schema.complete",
    ],
    "COMPONENT_SPLIT_REQUEST": True,  # request bodies typed apart from answers (read-only ids)
}
# Seconds a POST's answer is kept for a retry with the same Idempotency-Key; beat deletes older.
IDEMPOTENCY_KEY_TTL = env_int("IDEMPOTENCY_KEY_TTL", 24 * 3600)
# Final drift checks older than this go (each workspace keeps its latest): services/runs.py.
DRIFT_RUN_RETENTION = env_int("DRIFT_RUN_RETENTION", 7 * 24 * 3600)
# API tokens (provisioning.services.tokens): expiry in days, by default and at most.
API_TOKEN_DEFAULT_DAYS = env_int("API_TOKEN_DEFAULT_DAYS", 30)
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365)
# Bad tokens from one client address: after API_FAILED_AUTH_LIMIT within API_FAILED_AUTH_WINDOW
# seconds, every request from it is 429 until the window has passed (provisioning.security).
API_FAILED_AUTH_LIMIT = env_int("API_FAILED_AUTH_LIMIT", 20)
API_FAILED_AUTH_WINDOW = env_int("API_FAILED_AUTH_WINDOW", 300)
# Throttle and failed-authentication counts: per process unless CACHE_URL names a shared Redis
# (do set it when several web processes serve the portal).
CACHE_URL = os.environ.get("CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
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
# Drift checks: every workspace once per interval, spread over ticks (slot = id % slots), at
# most that many drift runs queued or running per AWS account, and a pause for an account whose
# check was throttled.
DRIFT_CHECK_INTERVAL = env_int("DRIFT_CHECK_INTERVAL", 6 * 3600)
DRIFT_CHECK_TICK = env_int("DRIFT_CHECK_TICK", 60)
DRIFT_MAX_CONCURRENT_PER_ACCOUNT = env_int("DRIFT_MAX_CONCURRENT_PER_ACCOUNT", 4)
DRIFT_THROTTLE_BACKOFF = env_int("DRIFT_THROTTLE_BACKOFF", 600)
DRIFT_AWS_MAX_RETRIES = env_int("DRIFT_AWS_MAX_RETRIES", 3)  # the provider's, for drift plans
CELERY_BEAT_SCHEDULE = {
    "reap-interrupted-runs": {"task": "provisioning.reap_interrupted_runs", "schedule": 60.0},
    "dispatch-queued-runs": {"task": "provisioning.dispatch_queued_runs", "schedule": 30.0},
    "sweep-run-workdirs": {"task": "provisioning.sweep_run_workdirs", "schedule": 3600.0},
    "purge-drift-runs": {"task": "provisioning.purge_drift_runs", "schedule": 3600.0},
    # Idempotency-Key answers past IDEMPOTENCY_KEY_TTL (provisioning/services/idempotency.py).
    "purge-idempotency-records": {
        "task": "provisioning.purge_idempotency_records",
        "schedule": 3600.0,
    },
    # Webhook deliveries whose message never came (provisioning/notifications/webhooks.py).
    "redispatch-webhooks": {"task": "notifications.redispatch_webhooks", "schedule": 60.0},
    # Roles and keys of the portal that no workspace holds (reported, never deleted).
    "sweep-orphans": {
        "task": "provisioning.sweep_orphans",
        "schedule": float(env_int("ORPHAN_SWEEP_INTERVAL", 6 * 3600)),
    },
    # Every tick checks the workspaces whose slot it is (provisioning/services/drift.py).
    "check-drift": {"task": "provisioning.check_drift", "schedule": float(DRIFT_CHECK_TICK)},
    # The node role audit runs on the drift checks' schedule: both look for changes made by hand.
    "audit-node-roles": {
        "task": "provisioning.audit_node_roles",
        "schedule": float(DRIFT_CHECK_INTERVAL),
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
# Appended to every S3 bucket name (bucket names are global across all AWS accounts), for example
# "-111122223333". Set it once at installation: changing it renames (replaces) every bucket.
S3_BUCKET_NAME_SUFFIX = os.environ.get("S3_BUCKET_NAME_SUFFIX", "")
# Days AWS waits before deleting a destroyed workspace's KMS key (7-30); an admin can restore the
# key until then (Workspaces admin action).
KMS_KEY_DELETION_WINDOW_DAYS = env_int("KMS_KEY_DELETION_WINDOW_DAYS", 30)
if not 7 <= KMS_KEY_DELETION_WINDOW_DAYS <= 30:
    raise ImproperlyConfigured("KMS_KEY_DELETION_WINDOW_DAYS must be a whole number from 7 to 30.")
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
# A delivery written with its event but not attempted this many seconds later (the process died
# between commit and enqueue, or the broker lost the message) is sent by the beat sweep.
WEBHOOK_REDISPATCH_AFTER = env_int("WEBHOOK_REDISPATCH_AFTER", 120)

# --- Security review ------------------------------------------------------------------------
# Namespaces no microservice may trust into: the cluster's own workloads run there.
SYSTEM_NAMESPACES = env_list("SYSTEM_NAMESPACES", "kube-system,kube-public,kube-node-lease,default")
# Approve, without a human, change requests whose analysis shows only removed access.
AUTO_APPROVE_NO_NEW_ACCESS = env_bool("AUTO_APPROVE_NO_NEW_ACCESS", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # Secrets, backend configuration and server paths are masked in the process log too.
        "redact": {"()": "provisioning.redaction.RedactingFilter"},
        "expected_refusals": {"()": "portal.log_filters.ExpectedRefusalsOneLine"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"filters": ["expected_refusals"]}},
}
