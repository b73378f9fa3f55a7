"""The `irsa` CLI's pure parts: exit statuses a pipeline relies on, the readable rendering of a
review, error messages from the API's error shapes, and spec files it cannot read."""

from __future__ import annotations

import json

import pytest

from irsa_cli import output
from irsa_cli.__main__ import _apply_exit_code, main
from irsa_cli.client import describe

REVIEW = {
    "workspaces": [
        {
            "run": 7,
            "cluster": "demo",
            "status": "succeeded",
            "analysis": {
                "diff": {
                    "added": {
                        "identity": [{"action": "s3:PutObject", "resource": "arn:aws:s3:::b/*"}],
                        "trust": [],
                        "key": [],
                    },
                    "removed": {"identity": [], "trust": [], "key": []},
                },
                "findings": [
                    {
                        "severity": "high",
                        "rule": "IRSA005",
                        "location": "identity_policy.Statement[0]",
                        "message": "too wide",
                    }
                ],
            },
        }
    ],
    "summary": {"blocking": True, "classification_label": "New access"},
}


def change(status="planned", runs=(), review=None):
    return {
        "id": 3,
        "kind": "change",
        "microservice": "orders",
        "status": status,
        "runs": list(runs),
        "review": review or {},
    }


@pytest.mark.parametrize(
    "data, waited, code",
    [
        (change(), True, 0),
        (change(review=REVIEW), True, 1),  # a high finding
        (change("draft", [{"kind": "plan", "status": "failed"}]), True, 1),  # the plan failed
        (change("draft", [{"kind": "plan", "status": "failed"}]), False, 0),  # not waited
        (change("rejected"), False, 1),
        (change("applied"), True, 0),
    ],
)
def test_apply_exit_codes(data, waited, code):
    assert _apply_exit_code(data, waited=waited) == code


def test_the_review_is_readable():
    text = output.review(change(review=REVIEW))
    assert "change request #3: change orders is planned" in text
    assert "+ s3:PutObject on arn:aws:s3:::b/*" in text
    assert "[high] IRSA005 identity_policy.Statement[0]: too wide" in text
    assert text.endswith("New access: BLOCKED (high finding)")


def test_grants_that_differ_only_by_condition_read_apart():
    """The key is used only through DynamoDB, or only through S3: two grants of one action."""
    key = "arn:aws:kms:us-east-1:1:key/k"
    via = [
        {"operator": "StringEquals", "key": "kms:ViaService", "values": [f"{s}.us-east-1.x"]}
        for s in ("dynamodb", "s3")
    ]
    data = change(review=json.loads(json.dumps(REVIEW)))
    added = data["review"]["workspaces"][0]["analysis"]["diff"]["added"]
    added["identity"] = [{"action": "kms:Decrypt", "resource": key, "conditions": [c]} for c in via]
    added["key"] = [{"principal": "role/r", "action": "kms:Decrypt", "conditions": [via[1]]}]
    lines = output.review(data).splitlines()
    assert f"  + kms:Decrypt on {key} if kms:ViaService StringEquals dynamodb.us-east-1.x" in lines
    assert f"  + kms:Decrypt on {key} if kms:ViaService StringEquals s3.us-east-1.x" in lines
    assert "  + key: role/r may kms:Decrypt if kms:ViaService StringEquals s3.us-east-1.x" in lines


def test_the_review_shows_the_data_at_risk_and_how_to_confirm():
    data = change(review=REVIEW)
    data["data_loss"] = {
        "at_risk": [
            {
                "cluster": "demo",
                "run": 7,
                "entries": [{"kind": "DynamoDB table", "name": "demo--orders--t", "items": 3}],
            }
        ],
        "waiting": True,
    }
    text = output.review(data)
    assert "DELETES DATA demo: DynamoDB table demo--orders--t (3 items)" in text
    assert text.endswith("irsa confirm-data-loss 3 --name orders")


def test_confirm_data_loss_posts_the_typed_name(monkeypatch, capsys):
    sent = {}

    class FakeClient:
        def post(self, path, body):
            sent.update(path=path, body=body)
            return change()

    monkeypatch.setattr("irsa_cli.__main__._client", lambda: FakeClient())
    assert main(["confirm-data-loss", "3", "--name", "orders"]) == 0
    assert sent == {
        "path": "change-requests/3/confirm-data-loss/",
        "body": {"confirm_name": "orders"},
    }
    assert "change request #3" in capsys.readouterr().out


def test_api_errors_become_one_message():
    body = {"errors": {"resources[0].name": ["Use a DNS-1123 label."]}}
    assert (
        describe(400, body)
        == "HTTP 400: invalid input:\n  resources[0].name: Use a DNS-1123 label."
    )
    assert (
        describe(409, {"detail": "Already open.", "change_request": 4}) == "HTTP 409: Already open."
    )


def test_unreadable_specs_are_usage_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IRSA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("IRSA_TOKEN", "x")
    bad = tmp_path / "irsa.json"
    bad.write_text("{not json")
    assert main(["apply", str(bad)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    nameless = tmp_path / "nameless.json"
    nameless.write_text(json.dumps({"namespace": "shop"}))
    assert main(["apply", str(nameless)]) == 2
    assert "pass --name" in capsys.readouterr().err
    assert main(["apply", str(tmp_path / "missing.json")]) == 2
