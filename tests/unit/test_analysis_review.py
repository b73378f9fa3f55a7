"""The per-workspace analysis document and the change request summary."""

import copy
import json
from pathlib import Path

from provisioning.analysis.matrix import NeighbourResource
from provisioning.analysis.review import analyse_change, analyse_workspace
from provisioning.iam.spec import parse_workspace_spec

ROOT = Path(__file__).parents[2]
REFERENCE = json.loads((ROOT / "docs/examples/reference-spec.json").read_text())
KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SPEC = parse_workspace_spec(REFERENCE)


def spec_with(**changes):
    return parse_workspace_spec({**copy.deepcopy(REFERENCE), **changes})


def test_create_renders_with_the_marked_placeholder_and_adds_everything():
    result = analyse_workspace(spec=SPEC, key_arn=None)
    assert json.loads(json.dumps(result)) == result
    assert set(result) == {"policies", "grants", "diff", "findings", "matrix"}
    assert result["policies"]["kms_key"]["placeholder"] is True
    assert "(known after apply)" not in json.dumps(result)
    assert result["diff"]["added"] == result["grants"]
    assert result["findings"] == [] and result["matrix"]["verdict"] == "ok"


def test_change_uses_the_live_key_for_both_sides():
    narrower = spec_with(resources=REFERENCE["resources"][:1])
    result = analyse_workspace(spec=narrower, key_arn=None, live_spec=SPEC, live_key_arn=KEY_ARN)
    assert result["policies"]["kms_key"] == {
        "arn": KEY_ARN,
        "alias": "alias/irsa/dev-eu--orders",
        "placeholder": False,
    }
    added = result["diff"]["added"]
    assert added == {"identity": [], "trust": [], "key": []}
    assert any(g["action"] == "s3:ListBucket" for g in result["diff"]["removed"]["identity"])
    summary = analyse_change([result], decommission=False)
    assert summary == {
        "classification": "no_new_access",
        "classification_label": "No new access (removals only, same principals)",
        "blocking": False,
        "findings": {"high": 0, "medium": 0, "low": 0},
        "matrix_ok": True,
    }


def test_decommission_has_no_policies_and_removes_everything():
    result = analyse_workspace(spec=None, key_arn=None, live_spec=SPEC, live_key_arn=KEY_ARN)
    assert result["policies"] is None
    assert result["diff"]["added"] == {"identity": [], "trust": [], "key": []}
    assert result["diff"]["removed"]["trust"][0]["service_account"] == "orders"
    summary = analyse_change([result], decommission=True)
    assert summary["classification"] == "decommission"
    assert summary["classification_label"] == "Decommission (deletes data)"


def test_new_service_account_and_new_resource_classify_by_precedence():
    more_accounts = analyse_workspace(
        spec=spec_with(service_accounts=["orders", "api"]),
        key_arn=KEY_ARN,
        live_spec=SPEC,
        live_key_arn=KEY_ARN,
    )
    resources = REFERENCE["resources"] + [
        {"kind": "s3_bucket", "name": "exports", "access": "read"}
    ]
    more_resources = analyse_workspace(
        spec=spec_with(resources=resources), key_arn=KEY_ARN, live_spec=SPEC, live_key_arn=KEY_ARN
    )
    assert analyse_change([more_resources], decommission=False)["classification"] == (
        "new_access_own_resources"
    )
    both = analyse_change([more_resources, more_accounts], decommission=False)
    assert both["classification"] == "new_trust_subject"


def test_neighbours_are_in_the_matrix():
    neighbour = NeighbourResource("billing", "s3_bucket", "arn:aws:s3:::dev-eu-billing-exports")
    result = analyse_workspace(spec=SPEC, key_arn=KEY_ARN, neighbours=[neighbour])
    rows = [r for r in result["matrix"]["rows"] if r["category"] == "neighbour"]
    assert rows and not any(r["actual"] for r in rows)


def test_summary_blocks_on_high_findings_and_counts_matrix_failures():
    result = analyse_workspace(spec=SPEC, key_arn=KEY_ARN)
    result["findings"] = [
        {"rule": "IRSA003", "severity": "high", "message": "m", "location": "l"},
        {"rule": "IRSA008", "severity": "low", "message": "m", "location": "l"},
    ]
    result["matrix"]["verdict"] = "fail"
    summary = analyse_change([result], decommission=False)
    assert summary["blocking"] is True
    assert summary["findings"] == {"high": 1, "medium": 0, "low": 1}
    assert summary["matrix_ok"] is False
