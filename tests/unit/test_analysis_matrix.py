"""Access matrix over every kind x level of the catalog, and hand-widened policies that fail it."""

import copy
import json
from pathlib import Path

import pytest

from provisioning.analysis.matrix import (
    IAM_ROLE,
    KMS_KEY,
    NEIGHBOUR,
    OWN,
    SAMPLE_SUB_RESOURCE,
    SENSITIVE,
    SENSITIVE_ACTIONS,
    Matrix,
    MatrixRow,
    NeighbourResource,
    access_matrix,
    kind_actions,
)
from provisioning.iam import naming
from provisioning.iam.catalog import load_catalog
from provisioning.iam.policies import render_policies
from provisioning.iam.spec import parse_workspace_spec

ROOT = Path(__file__).parents[2]
REFERENCE = json.loads((ROOT / "docs/examples/reference-spec.json").read_text())
CATALOG = load_catalog()
KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
NEIGHBOURS = (
    NeighbourResource(
        "billing",
        "dynamodb_table",
        "arn:aws:dynamodb:eu-west-1:111122223333:table/dev-eu-billing-ledger",
    ),
    NeighbourResource("billing", "s3_bucket", "arn:aws:s3:::dev-eu-billing-exports"),
    NeighbourResource("billing", KMS_KEY, "arn:aws:kms:eu-west-1:111122223333:key/9999"),
)


def spec_of(resources):
    return parse_workspace_spec({**REFERENCE, "resources": resources})


def matrix_for(spec, key_arn=KEY_ARN, policies=None):
    policies = policies or render_policies(spec, key_arn=key_arn)
    return access_matrix(spec, policies, neighbours=NEIGHBOURS)


@pytest.mark.parametrize("kind", sorted(CATALOG.kinds))
@pytest.mark.parametrize("level", ["read", "read_write"])
@pytest.mark.parametrize("key_arn", [KEY_ARN, None])
def test_generated_policies_pass_for_every_kind_and_level(kind, level, key_arn):
    spec = spec_of([{"kind": kind, "name": "x", "access": level}])
    matrix = matrix_for(spec, key_arn=key_arn)
    assert matrix.ok, [r for r in matrix.failures]
    arn = naming.resource_arn(spec, spec.resources[0])
    own = [r for r in matrix.rows if r.category == OWN and r.kind == kind]
    # every catalog action of the kind appears, allowed exactly when the level lists it
    assert {r.action for r in own} == {a for a, _ in kind_actions(CATALOG, kind)}
    granted = {a for s in CATALOG.level(kind, level).statements for a in s.actions}
    assert {r.action for r in own if r.actual} == granted
    assert all(r.resource.startswith(arn) for r in own)


def test_rows_use_the_catalogs_arn_forms():
    spec = spec_of(REFERENCE["resources"])
    rows = {(r.action, r.resource) for r in matrix_for(spec).rows if r.category == OWN}
    table = naming.resource_arn(spec, spec.resources[0])
    bucket = naming.resource_arn(spec, spec.resources[1])
    assert ("dynamodb:Query", f"{table}/index/{SAMPLE_SUB_RESOURCE}") in rows
    assert ("dynamodb:GetItem", f"{table}/index/{SAMPLE_SUB_RESOURCE}") not in rows  # no such form
    assert ("s3:GetObject", f"{bucket}/{SAMPLE_SUB_RESOURCE}") in rows
    assert ("s3:ListBucket", bucket) in rows
    assert ("s3:PutObject", f"{bucket}/{SAMPLE_SUB_RESOURCE}") in rows  # read level: denied


def test_kms_rows_cover_every_catalog_kms_action_via_every_service_and_directly():
    spec = spec_of([{"kind": "s3_bucket", "name": "x", "access": "read"}])
    rows = [r for r in matrix_for(spec).rows if r.category == OWN and r.kind == KMS_KEY]
    assert {r.action for r in rows} == {
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey",
    }
    allowed = [(r.action, r.context) for r in rows if r.actual]
    assert allowed == [("kms:Decrypt", {"kms:ViaService": "s3.eu-west-1.amazonaws.com"})]
    direct = [r for r in rows if r.context == {}]
    assert direct and not any(r.actual for r in direct)


def test_neighbours_and_sensitive_actions_are_denied():
    matrix = matrix_for(spec_of(REFERENCE["resources"]))
    neighbour = [r for r in matrix.rows if r.category == NEIGHBOUR]
    assert {r.kind for r in neighbour} == {"dynamodb_table", "s3_bucket", KMS_KEY}
    sensitive = {r.action for r in matrix.rows if r.category == SENSITIVE}
    assert sensitive == set(SENSITIVE_ACTIONS)
    assert not any(
        r.actual or r.expected
        for r in neighbour + [r for r in matrix.rows if r.category == SENSITIVE]
    )


def test_sensitive_rows_target_only_kinds_the_workspace_has():
    matrix = matrix_for(spec_of([{"kind": "s3_bucket", "name": "x", "access": "read"}]))
    kinds = {r.kind for r in matrix.rows if r.category == SENSITIVE}
    assert kinds == {"s3_bucket", KMS_KEY, IAM_ROLE}


def widened(spec, mutate):
    policies = copy.deepcopy(render_policies(spec, key_arn=KEY_ARN))
    mutate(policies)
    return matrix_for(spec, policies=policies)


def test_hand_widened_actions_fail_own_and_sensitive_rows():
    spec = spec_of([{"kind": "dynamodb_table", "name": "x", "access": "read"}])

    def wildcard(p):
        p["identity_policy"]["Statement"][0]["Action"] = ["dynamodb:*"]

    failures = widened(spec, wildcard).failures
    failed = {(r.category, r.action) for r in failures}
    assert (OWN, "dynamodb:PutItem") in failed
    assert (SENSITIVE, "dynamodb:DeleteTable") in failed
    assert all(r.actual and not r.expected for r in failures)


def test_hand_widened_resources_fail_neighbour_rows():
    spec = spec_of([{"kind": "s3_bucket", "name": "x", "access": "read"}])

    def every_bucket(p):
        p["identity_policy"]["Statement"][0]["Resource"] = ["arn:aws:s3:::dev-eu-*/*"]

    matrix = widened(spec, every_bucket)
    assert not matrix.ok
    assert {(r.category, r.action) for r in matrix.failures} == {
        (NEIGHBOUR, "s3:GetObject"),
        (NEIGHBOUR, "s3:GetObjectVersion"),
    }
    assert matrix.failures[0].statement == "S3BucketReadObjects"


def test_key_policy_granting_the_role_more_fails_sensitive_rows():
    spec = spec_of([{"kind": "s3_bucket", "name": "x", "access": "read"}])

    def key_admin(p):
        p["key_policy"]["Statement"][2]["Action"] += ["kms:ScheduleKeyDeletion"]
        del p["key_policy"]["Statement"][2]["Condition"]

    failed = {(r.category, r.action) for r in widened(spec, key_admin).failures}
    assert (SENSITIVE, "kms:ScheduleKeyDeletion") in failed
    assert (OWN, "kms:Decrypt") in failed  # now usable directly, not only through S3


def test_identity_allow_alone_does_not_open_the_key():
    spec = spec_of([{"kind": "s3_bucket", "name": "x", "access": "read"}])

    def identity_only(p):
        p["identity_policy"]["Statement"][-1]["Action"] += ["kms:CreateGrant"]
        del p["identity_policy"]["Statement"][-1]["Condition"]

    matrix = widened(spec, identity_only)
    grant = [r for r in matrix.rows if r.action == "kms:CreateGrant"]
    # the key policy lets the account root delegate CreateGrant only for AWS resources
    assert grant and not grant[0].actual
    # and the key policy's own ViaService condition still guards direct use of kms:Decrypt
    assert matrix.ok


def test_narrowed_policy_fails_expected_allows():
    spec = spec_of([{"kind": "dynamodb_table", "name": "x", "access": "read_write"}])

    def drop_put(p):
        p["identity_policy"]["Statement"][0]["Action"].remove("dynamodb:PutItem")

    failures = widened(spec, drop_put).failures
    assert [(r.action, r.expected, r.actual) for r in failures] == [
        ("dynamodb:PutItem", True, False)
    ]


def test_unevaluated_conditions_make_a_row_fail():
    spec = spec_of([{"kind": "s3_bucket", "name": "x", "access": "read"}])

    def odd(p):
        p["identity_policy"]["Statement"][0]["Condition"] = {
            "DateLessThan": {"aws:CurrentTime": "2099-01-01T00:00:00Z"}
        }

    failed = {r.action for r in widened(spec, odd).failures}
    assert "s3:GetObject" in failed


def test_to_dict_counts_and_verdict():
    row = MatrixRow(OWN, "s3_bucket", "s3:GetObject", "arn:aws:s3:::b/k", True, False, False, None)
    data = Matrix((row,)).to_dict()
    assert data["verdict"] == "fail"
    assert data["counts"] == {"rows": 1, "allowed": 0, "denied": 1, "failures": 1}
    assert data["rows"][0]["context"] == {}
    ok = matrix_for(spec_of(REFERENCE["resources"])).to_dict()
    assert ok["verdict"] == "ok" and json.loads(json.dumps(ok)) == ok
    assert NEIGHBOURS[0].to_dict()["owner"] == "billing"


def test_grants_and_evaluator_agree_on_every_unconditional_identity_grant():
    from provisioning.analysis.evaluator import evaluate
    from provisioning.analysis.grants import workspace_grants

    spec = spec_of(REFERENCE["resources"])
    policies = render_policies(spec, key_arn=KEY_ARN)
    for grant in workspace_grants(policies).identity:
        resource = grant.resource.replace("*", SAMPLE_SUB_RESOURCE)
        context = {key: values[0] for _, key, values in grant.conditions}
        decision = evaluate(
            [policies["identity_policy"]], action=grant.action, resource=resource, context=context
        )
        assert decision.allowed, grant
