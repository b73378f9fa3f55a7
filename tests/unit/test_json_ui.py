"""Terraform's machine-readable apply stream, as the plain lines a run's log shows."""

from __future__ import annotations

import json

import pytest

from provisioning.terraform.runner import JsonUi, StalePlanError, _raise_for


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
