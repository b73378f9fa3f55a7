"""Terraform's machine-readable apply stream, as the plain lines a run's log shows."""

from __future__ import annotations

import json

import pytest

from provisioning.terraform.runner import (
    JsonUi,
    StalePlanError,
    StateLockedError,
    _raise_for,
    lock_info,
)


def feed(*messages: object) -> tuple[JsonUi, list[str]]:
    lines: list[str] = []
    ui = JsonUi(lines.append)
    for message in messages:
        ui.write(message if isinstance(message, str) else json.dumps(message))
    return ui, lines


def test_progress_messages_become_the_lines_terraform_would_print():
    ui, lines = feed(
        {"@level": "info", "@message": "Terraform 1.11.4", "type": "version"},
        {
            "@level": "info",
            "@message": "module.irsa.aws_iam_role.this: Creating...",
            "type": "apply_start",
        },
        {
            "@level": "info",
            "@message": "Apply complete! Resources: 1 added, 0 changed, 0 destroyed.",
            "type": "change_summary",
        },
    )
    assert lines == [
        "Terraform 1.11.4",
        "module.irsa.aws_iam_role.this: Creating...",
        "Apply complete! Resources: 1 added, 0 changed, 0 destroyed.",
    ]
    assert ui.outputs is None  # no outputs message: the runner refuses to guess


def test_the_outputs_message_is_kept_and_listed_with_sensitive_values_hidden():
    ui, lines = feed(
        {
            "@message": "Outputs: 3",
            "type": "outputs",
            "outputs": {
                "role_arn": {"sensitive": False, "value": "arn:aws:iam::1:role/x"},
                "resource_arns": {"sensitive": False, "value": {"s3_bucket/b": "arn:aws:s3:::b"}},
                "token": {"sensitive": True, "type": "string", "value": "do-not-log"},
            },
        }
    )
    assert ui.outputs == {
        "role_arn": "arn:aws:iam::1:role/x",
        "resource_arns": {"s3_bucket/b": "arn:aws:s3:::b"},
        "token": "do-not-log",
    }
    assert lines == [
        "Outputs:",
        '  resource_arns = {"s3_bucket/b": "arn:aws:s3:::b"}',
        '  role_arn = "arn:aws:iam::1:role/x"',
        "  token = (sensitive value)",
    ]
    assert not any("do-not-log" in line for line in lines)


def test_an_empty_outputs_message_means_no_outputs_not_a_missing_report():
    ui, lines = feed({"@message": "Outputs: 0", "type": "outputs", "outputs": {}})
    assert ui.outputs == {} and lines == ["No outputs."]


def test_a_diagnostic_keeps_its_detail_so_a_stale_plan_is_recognised():
    ui, lines = feed(
        {
            "@level": "error",
            "@message": "Error: Saved plan is stale",
            "type": "diagnostic",
            "diagnostic": {
                "severity": "error",
                "summary": "Saved plan is stale",
                "detail": "The given plan file can no longer be applied because the state was "
                "changed by another operation after the plan was created.",
            },
        }
    )
    assert lines[0] == "Error: Saved plan is stale"
    assert lines[1].startswith("The given plan file can no longer be applied")
    with pytest.raises(StalePlanError, match="plan again and review it"):
        _raise_for(1, "apply", ui.text())


def test_lines_that_are_not_json_pass_through_unchanged():
    _, lines = feed("plain text from an old Terraform", "[1, 2]")
    assert lines == ["plain text from an old Terraform", "[1, 2]"]


S3_LOCK_ERROR = """Error: Error acquiring the state lock

Error message: operation error DynamoDB: PutItem, https response error StatusCode: 400,
ConditionalCheckFailedException: The conditional request failed
Lock Info:
  ID:        5c7a1e5e-0d43-4d1f-9a0e-6b1f2d3c4e5f
  Path:      irsa-portal-state/irsa/irsa_ws_7.tfstate
  Operation: OperationTypeApply
  Who:       root@worker-b
  Version:   1.11.4
  Created:   2026-11-27 17:45:01.123456789 +0000 UTC
  Info:


Terraform acquires a state lock to protect the state from being written
by multiple users at the same time."""


def test_a_lock_error_names_the_lock_its_holder_and_since_when():
    with pytest.raises(StateLockedError) as raised:
        _raise_for(1, "plan", S3_LOCK_ERROR)
    message = str(raised.value)
    assert "lock 5c7a1e5e-0d43-4d1f-9a0e-6b1f2d3c4e5f" in message
    assert "operation OperationTypeApply, held by root@worker-b" in message
    assert "since 2026-11-27 17:45:01.123456789 +0000 UTC" in message
    assert "not forced" in message and "release" in message
    assert lock_info(S3_LOCK_ERROR)["Path"] == "irsa-portal-state/irsa/irsa_ws_7.tfstate"


def test_a_lock_error_without_lock_info_still_says_the_state_is_locked():
    with pytest.raises(StateLockedError, match="locked by another run; the lock was not forced"):
        _raise_for(1, "apply", "Error: Error acquiring the state lock\n\nError message: busy")
    assert lock_info("no lock here") == {}


def test_the_pg_backends_lock_info_is_the_refused_attempts_own_and_is_not_shown_as_holder():
    with pytest.raises(StateLockedError) as raised:
        _raise_for(1, "plan", S3_LOCK_ERROR, holder=False)
    assert "locked by another run; the lock was not forced." in str(raised.value)
    assert "root@worker-b" not in str(raised.value)
