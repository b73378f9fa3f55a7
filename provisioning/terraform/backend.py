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
        return BackendConfig(
            "s3",
            {
                "bucket": s3_bucket,
                "key": f"irsa/{state_key}.tfstate",
                "region": region,
                "dynamodb_table": s3_lock_table,
                "encrypt": "true",
            },
        )
    raise BackendError(f"unknown backend {kind!r}")


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
