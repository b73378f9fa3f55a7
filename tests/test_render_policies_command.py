import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def run_command(*args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "1", "DATABASE_URL": "sqlite:///:memory:"}
    return subprocess.run(
        [sys.executable, "manage.py", "render_policies", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_prints_resources_key_and_the_three_policies():
    result = run_command("docs/examples/reference-spec.json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) >= {
        "resources",
        "kms_key",
        "identity_policy",
        "trust_policy",
        "key_policy",
    }
    assert document["kms_key"]["placeholder"] is True
    assert {r["kind"] for r in document["resources"]} == {"dynamodb_table", "s3_bucket"}


def test_output_carries_lint_findings_and_the_access_matrix():
    key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    result = run_command("docs/examples/reference-spec.json", "--kms-key-arn", key)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["findings"] == []
    matrix = document["matrix"]
    assert matrix["verdict"] == "ok" and matrix["counts"]["failures"] == 0
    rows = {(r["category"], r["action"], r["resource"]) for r in matrix["rows"]}
    table = "arn:aws:dynamodb:eu-west-1:111122223333:table/dev-eu--orders--orders"
    assert ("own", "dynamodb:PutItem", table) in rows
    assert ("sensitive", "dynamodb:DeleteTable", table) in rows
    assert ("own", "kms:Decrypt", key) in rows


def test_a_bad_key_arn_shows_up_as_findings_not_a_crash():
    result = run_command("docs/examples/reference-spec.json", "--kms-key-arn", "not-an-arn")
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert {f["rule"] for f in findings} == {"IRSA002", "IRSA008"}


def test_invalid_spec_exits_non_zero_with_the_messages(tmp_path):
    spec = json.loads((ROOT / "docs/examples/reference-spec.json").read_text())
    spec["resources"][0]["access"] = "admin"
    spec["namespace"] = "Shop"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    result = run_command(str(path))
    assert result.returncode != 0
    assert "resources[0].access: Unknown access level 'admin'" in result.stderr
    assert "namespace: 'Shop' has uppercase letters" in result.stderr
    assert result.stdout == ""


def test_unreadable_and_malformed_files_are_clear_errors(tmp_path):
    missing = run_command(str(tmp_path / "nope.json"))
    assert missing.returncode != 0 and "Cannot read" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = run_command(str(broken))
    assert result.returncode != 0 and "is not valid JSON" in result.stderr
