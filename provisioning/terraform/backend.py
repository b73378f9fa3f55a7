"""Where a workspace's Terraform state lives, configured at `init` time (never in rendered files).

- ``pg``: the portal's own PostgreSQL, one schema per workspace; Terraform's pg backend locks with
  advisory locks. The connection string goes to ``init`` without the password, which travels only
  in the child's ``PGPASSWORD`` (libpq's own variable, honoured by every Terraform >= 1.0; the
  backend's ``PG_CONN_STR`` is newer), so it never lands in ``.terraform/`` or a plan file.
- ``local``: one state directory per workspace, for the zero-setup SQLite default.
- ``s3``: production; one key per workspace in a bucket, locked with a DynamoDB table.

Pure: takes settings values, returns data.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

BACKENDS = ("local", "pg", "s3")
# The pg backend's first statement at every `init` (the same text in Terraform 1.0.3 and 1.11):
# one sequence shared by every workspace's `states` table. Two first `init`s at once on a
# database without it both try to create it and one fails (a duplicate pg_class row), so the
# portal creates it in its own migrations (0011) and Terraform's statement finds it there.
PG_BACKEND_SEQUENCE_DDL = "CREATE SEQUENCE IF NOT EXISTS public.global_states_id_seq AS bigint"
# A state key names a PostgreSQL schema, a directory and an S3 key: keep it a plain identifier.
STATE_KEY = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class BackendError(ValueError):
    """The backend settings cannot work; the message names the setting."""


@dataclass(frozen=True)
class BackendConfig:
    kind: str
    options: dict[str, str]  # -backend-config key=value pairs: nothing secret
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)

    def secrets(self) -> list[str]:
        return [value for value in self.secret_env.values() if value]


def resolve_backend_kind(setting: str, *, database_vendor: str) -> str:
    """``auto`` follows the portal's database: pg on PostgreSQL, local files otherwise."""
    if setting == "auto":
        return "pg" if database_vendor == "postgresql" else "local"
    if setting not in BACKENDS:
        raise BackendError(
            f"TERRAFORM_BACKEND={setting!r} is not one of auto, {', '.join(BACKENDS)}."
        )
    return setting


def backend_config(
    *,
    kind: str,
    state_key: str,
    state_dir: Path,
    database: dict[str, Any],
    s3_bucket: str = "",
    s3_lock_table: str = "",
    region: str = "",
    endpoint_url: str = "",
    terraform_version: str = "",
) -> BackendConfig:
    if not STATE_KEY.fullmatch(state_key):
        raise BackendError(
            f"State key {state_key!r} must be 1-63 lowercase letters, digits or underscores, "
            "starting with a letter or underscore."
        )
    if kind == "local":
        return BackendConfig("local", {"path": str(state_dir / state_key / "terraform.tfstate")})
    if kind == "pg":
        password = database.get("PASSWORD") or ""
        return BackendConfig(
            "pg",
            {
                "conn_str": postgres_conn_str(database, with_password=False),
                "schema_name": state_key,
            },
            {"PGPASSWORD": password} if password else {},
        )
    if kind == "s3":
        if not s3_bucket or not s3_lock_table:
            raise BackendError(
                "TERRAFORM_BACKEND=s3 needs TERRAFORM_STATE_BUCKET and TERRAFORM_LOCK_TABLE."
            )
        options = {
            "bucket": s3_bucket,
            "key": f"irsa/{state_key}.tfstate",
            "region": region,
            "dynamodb_table": s3_lock_table,
            "encrypt": "true",
        }
        if endpoint_url:
            options.update(s3_endpoint_options(endpoint_url, terraform_version))
        return BackendConfig("s3", options)
    raise BackendError(f"unknown backend {kind!r}")


def s3_endpoint_options(endpoint_url: str, terraform_version: str) -> dict[str, str]:
    """The S3 backend pointed at another endpoint (the sandbox). Terraform before 1.6 names the
    endpoints in flat arguments; from 1.6 they are an ``endpoints`` object, which
    ``-backend-config key=value`` cannot set, so they travel as ``AWS_ENDPOINT_URL_*`` variables
    (``s3_endpoint_env``), which the newer backend reads."""
    common = {
        "skip_credentials_validation": "true",
        "skip_metadata_api_check": "true",
        "skip_region_validation": "true",
    }
    if _before_1_6(terraform_version):
        return {
            **common,
            "endpoint": endpoint_url,
            "dynamodb_endpoint": endpoint_url,
            "sts_endpoint": endpoint_url,
            "force_path_style": "true",
        }
    return {**common, "use_path_style": "true", "skip_requesting_account_id": "true"}


def s3_endpoint_env(endpoint_url: str, terraform_version: str) -> dict[str, str]:
    if not endpoint_url or _before_1_6(terraform_version):
        return {}
    return {
        f"AWS_ENDPOINT_URL_{service}": endpoint_url for service in ("S3", "DYNAMODB", "STS", "IAM")
    }


def _before_1_6(version: str) -> bool:
    match = re.match(r"(\d+)\.(\d+)", version or "")
    return bool(match) and (int(match.group(1)), int(match.group(2))) < (1, 6)


def postgres_conn_str(database: dict[str, Any], *, with_password: bool = True) -> str:
    """A libpq URL for Django's DATABASES entry (the pg backend takes a URL)."""
    if "postgresql" not in database.get("ENGINE", ""):
        raise BackendError("TERRAFORM_BACKEND=pg needs the portal's DATABASE_URL to be PostgreSQL.")
    user = quote(database.get("USER") or "", safe="")
    password = quote(database.get("PASSWORD") or "", safe="") if with_password else ""
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    sslmode = (database.get("OPTIONS") or {}).get("sslmode", "disable")
    return (
        f"postgres://{credentials}{host}:{port}/{quote(database['NAME'], safe='')}"
        f"?sslmode={sslmode}"
    )


def empty_state(terraform_version: str) -> str:
    """A Terraform state (format 4) with nothing in it and a fresh lineage: a new workspace's."""
    return json.dumps(
        {
            "version": 4,
            "terraform_version": terraform_version,
            "serial": 1,
            "lineage": str(uuid.uuid4()),
            "outputs": {},
            "resources": [],
        }
    )
