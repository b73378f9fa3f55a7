"""The pg state backend's shared id sequence exists before any Terraform `init`.

Terraform's pg backend starts every `init` with ``CREATE SEQUENCE IF NOT EXISTS
public.global_states_id_seq``. Two first `init`s at once on a database without the sequence both
create it, and the second fails on PostgreSQL's catalog (a duplicate ``pg_class`` row): on a fresh
install, two workers' first plans. The portal's migration 0011 creates it first.
"""

from __future__ import annotations

import mmap
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from provisioning.terraform.backend import PG_BACKEND_SEQUENCE_DDL, postgres_conn_str
from provisioning.terraform.toolchain import FALLBACK_TERRAFORM, REPO_ROOT

pytestmark = pytest.mark.django_db


def terraform_binaries() -> list[Path]:
    found = [Path(p) for p in (shutil.which("terraform"), FALLBACK_TERRAFORM) if p]
    return [p for p in found if p.is_file()]


@pytest.mark.parametrize("binary", terraform_binaries(), ids=lambda p: p.parent.name)
def test_the_statement_is_terraforms_own(binary: Path):
    """The portal's statement is byte for byte the one in each supported Terraform, so the
    backend's ``IF NOT EXISTS`` finds what the migration made."""
    with binary.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        assert data.find(PG_BACKEND_SEQUENCE_DDL.encode()) != -1


def test_the_migrated_database_has_the_sequence():
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.global_states_id_seq')::text")
        assert cursor.fetchone() == ("global_states_id_seq",)


@contextmanager
def scratch_database() -> Iterator[dict]:
    """An empty database of its own (its Django settings): the race needs one where the
    sequence does not exist."""
    name = f"irsa_seq_{uuid.uuid4().hex[:10]}"
    admin = postgres_conn_str(connection.settings_dict)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    try:
        yield {**connection.settings_dict, "NAME": name}
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)
                )
            )


def two_first_inits(conn_str: str) -> list[Exception]:
    """Two sessions run the backend's statement at once: the first holds its transaction open
    until the second is seen waiting on it, then commits. Returns what the second raised."""
    first, second = psycopg.connect(conn_str), psycopg.connect(conn_str)
    errors: list[Exception] = []

    def run_second() -> None:
        try:
            second.execute(PG_BACKEND_SEQUENCE_DDL)
            second.commit()
        except psycopg.Error as exc:
            errors.append(exc)

    try:
        first.execute(PG_BACKEND_SEQUENCE_DDL)
        thread = threading.Thread(target=run_second)
        thread.start()
        with psycopg.connect(conn_str, autocommit=True) as watcher:
            for _ in range(200):
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = "
                    "'Lock'",
                    [second.info.backend_pid],
                ).fetchone()[0]
                if waiting or not thread.is_alive():
                    break
                thread.join(0.05)
        first.commit()
        thread.join(10)
        assert not thread.is_alive()
    finally:
        first.close()
        second.close()
    return errors


def test_two_first_inits_race_on_a_bare_database_and_not_after_the_migration():
    with scratch_database() as bare:
        (error,) = two_first_inits(postgres_conn_str(bare))  # the failure the migration prevents
        assert isinstance(error, psycopg.errors.UniqueViolation), error
        assert "pg_class" in str(error)

    with scratch_database() as migrated:
        subprocess.run(  # the real `migrate`, as a deployment runs it
            [sys.executable, "manage.py", "migrate", "--no-input", "--skip-checks", "-v", "0"],
            cwd=REPO_ROOT,
            env={**os.environ, "DATABASE_URL": postgres_conn_str(migrated)},
            check=True,
            timeout=300,
        )
        assert two_first_inits(postgres_conn_str(migrated)) == []
