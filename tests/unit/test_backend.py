"""Backend settings: what goes to `init`, what stays in the child's environment, what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.terraform.backend import BackendError, backend_config, resolve_backend_kind

DATABASE = {
    "ENGINE": "django.db.backends.postgresql",
    "HOST": "db.internal",
    "PORT": "5432",
    "NAME": "portal",
    "USER": "portal",
    "PASSWORD": "s3cr3t-pw",
}


def config(kind: str, state_key: str = "irsa_ws_7", **extra):
    return backend_config(
        kind=kind, state_key=state_key, state_dir=Path("/var/state"), database=DATABASE, **extra
    )


def test_pg_password_travels_only_in_the_environment():
    backend = config("pg")
    assert backend.options["schema_name"] == "irsa_ws_7"
    assert (
        backend.options["conn_str"] == "postgres://portal@db.internal:5432/portal?sslmode=disable"
    )
    assert "s3cr3t-pw" not in " ".join(backend.options.values())
    assert backend.secret_env == {"PGPASSWORD": "s3cr3t-pw"}
    assert backend.secrets() == ["s3cr3t-pw"]


def test_local_and_s3_name_the_state_by_its_key():
    assert config("local").options == {"path": "/var/state/irsa_ws_7/terraform.tfstate"}
    s3 = config("s3", s3_bucket="states", s3_lock_table="locks", region="eu-west-1")
    assert s3.options["key"] == "irsa/irsa_ws_7.tfstate"
    assert s3.secret_env == {}


def test_s3_without_bucket_and_lock_table_names_the_settings():
    with pytest.raises(BackendError, match="TERRAFORM_STATE_BUCKET and TERRAFORM_LOCK_TABLE"):
        config("s3", s3_bucket="states")


@pytest.mark.parametrize(
    "state_key", ["", "Irsa", "irsa-ws", 'x"; drop schema public; --', "1ws", "a" * 64, "ws/../x"]
)
def test_a_state_key_that_is_not_a_plain_identifier_is_refused(state_key):
    with pytest.raises(BackendError, match="lowercase letters, digits or underscores"):
        config("pg", state_key=state_key)


def test_auto_follows_the_database_and_unknown_kinds_are_named():
    assert resolve_backend_kind("auto", database_vendor="postgresql") == "pg"
    assert resolve_backend_kind("auto", database_vendor="sqlite") == "local"
    with pytest.raises(BackendError, match="TERRAFORM_BACKEND='gcs'"):
        resolve_backend_kind("gcs", database_vendor="postgresql")
