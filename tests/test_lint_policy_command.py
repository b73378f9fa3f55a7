"""manage.py lint_policy on real policy files, run as a user would run it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
GOLDEN = ROOT / "tests" / "golden"
PROVIDER = (
    "arn:aws:iam::111122223333:oidc-provider/"
    "oidc.eks.eu-west-1.amazonaws.com/id/5C7A1E8B9D4F2A6E3B0C1D2E3F4A5B6C"
)


def run_command(*args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "1", "DATABASE_URL": "sqlite:///:memory:"}
    return subprocess.run(
        [sys.executable, "manage.py", "lint_policy", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(tmp_path: Path, name: str, policy) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(policy) if not isinstance(policy, str) else policy)
    return str(path)


WIDE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "All", "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
        {
            "Sid": "Escalate",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": "arn:aws:iam::111122223333:role/admin",
        },
    ],
}


def test_clean_generated_policies_exit_zero():
    for name, extra in (
        ("identity_policy", []),
        ("trust_policy", ["--oidc-provider-arn", PROVIDER]),
        ("key_policy", []),
    ):
        result = run_command(str(GOLDEN / f"reference_{name}.json"), *extra)
        assert result.returncode == 0, result.stderr
        kind = name.split("_")[0]
        assert f"({kind} policy): 0 finding(s)" in result.stdout


def test_high_findings_are_printed_and_exit_non_zero(tmp_path):
    result = run_command(write(tmp_path, "wide.json", WIDE))
    assert result.returncode == 1
    assert "IRSA003 high   identity_policy.Statement[0].Action" in result.stdout
    assert "IRSA004 high   identity_policy.Statement[0].Resource" in result.stdout
    assert "IRSA005 high   identity_policy.Statement[1].Action[0]" in result.stdout
    assert "high finding(s)" in result.stderr


def test_json_output(tmp_path):
    result = run_command(write(tmp_path, "wide.json", WIDE), "--json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["kind"] == "identity" and document["blocking"] is True
    assert {f["rule"] for f in document["findings"]} >= {"IRSA003", "IRSA004", "IRSA005"}
    assert document["counts"]["high"] >= 3


def test_trust_policy_is_detected_and_checked_against_the_cluster(tmp_path):
    policy = json.loads((GOLDEN / "reference_trust_policy.json").read_text())
    condition = policy["Statement"][0]["Condition"]
    condition["StringLike"] = {"x:sub": "*"}
    path = write(tmp_path, "trust.json", policy)
    result = run_command(path, "--json")
    document = json.loads(result.stdout)
    assert document["kind"] == "trust"
    assert "IRSA013" in {f["rule"] for f in document["findings"]}
    other = PROVIDER.replace("5C7A", "0000")
    mismatch = run_command(path, "--oidc-provider-arn", other)
    assert mismatch.returncode == 1 and "IRSA010" in mismatch.stdout


def test_medium_only_findings_exit_zero(tmp_path):
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b"},
        ]
    }
    result = run_command(write(tmp_path, "medium.json", policy), "--kind", "identity")
    assert result.returncode == 0, result.stderr
    assert "IRSA002 medium" in result.stdout


def test_key_kind_checks_the_role(tmp_path):
    policy = json.loads((GOLDEN / "reference_key_policy.json").read_text())
    path = write(tmp_path, "key.json", policy)
    other = "arn:aws:iam::111122223333:role/irsa/someone-else"
    result = run_command(path, "--role-arn", other)
    assert result.returncode == 1 and "IRSA016" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "is not an IAM policy"),
        ('{"Version": "2012-10-17"}', "is not an IAM policy"),
    ],
)
def test_invalid_files_are_clear_errors(tmp_path, content, message):
    result = run_command(write(tmp_path, "bad.json", content))
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_and_bad_kind(tmp_path):
    missing = run_command(str(tmp_path / "nope.json"))
    assert missing.returncode != 0 and "Cannot read" in missing.stderr
    bad_kind = run_command(str(GOLDEN / "reference_identity_policy.json"), "--kind", "resource")
    assert bad_kind.returncode != 0 and "invalid choice" in bad_kind.stderr
