"""Workspaces keep independent state and locks in the pg backend; a locked workspace refuses a
second plan with the lock error and its state survives intact."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from provisioning.terraform.backend import postgres_conn_str
from provisioning.terraform.runner import StateLockedError
from tests.integration.conftest import REFERENCE_RESOURCES, workspace_spec

pytestmark = pytest.mark.integration


def hold_state_lock(state_key: str) -> psycopg.Connection:
    """Take the workspace's lock the way the pg backend does: a session advisory lock on the id of
    its state row. Returns the connection that holds it."""
    conn = psycopg.connect(postgres_conn_str(connection.settings_dict), autocommit=True)
    (state_id,) = conn.execute(
        psycopg.sql.SQL("SELECT id FROM {}.states WHERE name = 'default'").format(
            psycopg.sql.Identifier(state_key)
        )
    ).fetchone()
    assert conn.execute("SELECT pg_try_advisory_lock(%s)", (state_id,)).fetchone()[0]
    return conn


def test_two_workspaces_have_independent_state_and_locks(
    tf_settings, open_runner, demo_aws, unique_name
):
    spec_a = workspace_spec(demo_aws, f"{unique_name}a", REFERENCE_RESOURCES[:1])
    spec_b = workspace_spec(demo_aws, f"{unique_name}b", REFERENCE_RESOURCES[1:])
    key_a, key_b = f"irsa_test_{unique_name}_a", f"irsa_test_{unique_name}_b"
    runner_a = open_runner(spec_a, key_a)
    runner_a.apply(runner_a.plan().plan_file)
    assert set(runner_a.outputs()["resource_arns"]) == {"dynamodb_table/orders"}

    holder = hold_state_lock(key_a)
    try:
        with pytest.raises(StateLockedError, match="locked by another run"):
            open_runner(spec_a, key_a).plan()
        plan_b = open_runner(spec_b, key_b).plan()  # B does not wait for A's lock
        assert plan_b.has_changes
        assert all("orders" not in address for address in plan_b.summary["add"])
    finally:
        holder.close()

    after = open_runner(spec_a, key_a).plan()
    assert not after.has_changes, "the lock error left the state changed or corrupted"
    open_runner(spec_a, key_a).destroy()
