"""Workspaces keep independent state and locks in the pg backend; a locked workspace refuses a
second plan with the lock error and its state survives intact."""

from __future__ import annotations

import json

import psycopg
import psycopg.sql
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


def state_rows(state_key: str) -> list[tuple[str, dict]]:
    with psycopg.connect(postgres_conn_str(connection.settings_dict), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'states'", [state_key]
        ).fetchone()
        if not exists:
            return []
        rows = conn.execute(
            psycopg.sql.SQL("SELECT name, data FROM {}.states").format(
                psycopg.sql.Identifier(state_key)
            )
        ).fetchall()
    return [(name, json.loads(data)) for name, data in rows]


def test_a_new_workspace_gets_an_empty_state_row_once_without_an_extra_terraform_call(
    tf_settings, open_runner, demo_aws, unique_name
):
    spec = workspace_spec(demo_aws, unique_name, REFERENCE_RESOURCES[:1])
    key = f"irsa_test_{unique_name}"
    assert state_rows(key) == []

    first: list[str] = []
    open_runner(spec, key, first)
    assert [line.split()[2] for line in first if line.startswith("$ terraform")] == ["init"]
    assert any("an empty state row was created" in line for line in first)
    [(name, state)] = state_rows(key)
    assert name == "default" and state["resources"] == [] and state["lineage"]

    again: list[str] = []
    open_runner(spec, key, again)
    assert not any("state row was created" in line for line in again)
    assert state_rows(key) == [(name, state)], "an existing state row was overwritten"

    plan = open_runner(spec, key).plan()  # Terraform reads the row as a valid, empty state
    assert plan.has_changes and "module.irsa.aws_iam_role.this" in plan.summary["add"]
