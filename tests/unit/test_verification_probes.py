"""Pure parts of the verification: probe planning from matrix rows, outcome interpretation, the
pod's error classification and the node role classification."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from provisioning.verification import probes as p
from provisioning.verification.node_role import classify_node_role
from provisioning.verification.pod import classify

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/demo-a-orders"
OTHER_TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/demo-b-stock"
BUCKET = "arn:aws:s3:::demo-a-files"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1111"
OTHER_KEY = "arn:aws:kms:us-east-1:123456789012:key/2222"
S3_VIA = {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
DYNAMODB_VIA = {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}


@dataclass(frozen=True)
class Row:
    category: str
    kind: str
    action: str
    resource: str
    expected: bool
    context: dict[str, Any] = field(default_factory=dict)


TARGETS = p.ProbeTargets(
    token="abc123def456",
    table_keys={TABLE: ("order_id", "S"), OTHER_TABLE: ("sku", "N")},
    own_buckets=("demo-a-files",),
    own_tables=(TABLE,),
    bucket_policies={"demo-a-files": '{"Version": "2012-10-17"}'},
)


def plan(*rows: Row) -> tuple[list[p.Probe], list[p.Skipped]]:
    return p.plan_probes(rows, sa="orders", targets=TARGETS)


def test_expected_values_are_the_matrix_rows_own():
    probes, _ = plan(
        Row("own", "dynamodb_table", "dynamodb:GetItem", TABLE, True),
        Row("own", "dynamodb_table", "dynamodb:PutItem", TABLE, False),
    )
    assert {(x.action, x.expected) for x in probes} == {
        ("dynamodb:GetItem", True),
        ("dynamodb:PutItem", False),
    }


def test_writes_come_first_and_the_sensitive_actions_last():
    probes, _ = plan(
        Row("sensitive", "dynamodb_table", "dynamodb:DeleteTable", TABLE, False),
        Row("own", "dynamodb_table", "dynamodb:DeleteItem", TABLE, True),
        Row("own", "dynamodb_table", "dynamodb:GetItem", TABLE, True),
        Row("own", "dynamodb_table", "dynamodb:PutItem", TABLE, True),
    )
    assert [x.op for x in probes] == [
        "dynamodb.put_item",
        "dynamodb.get_item",
        "dynamodb.delete_item",
        "dynamodb.delete_table",
    ]


def test_probe_items_use_the_table_key_and_a_probe_value_of_their_own():
    probes, _ = plan(
        Row("own", "dynamodb_table", "dynamodb:PutItem", TABLE, True),
        Row("neighbour", "dynamodb_table", "dynamodb:GetItem", OTHER_TABLE, False),
    )
    own, other = probes
    assert own.args["key_name"] == "order_id" and own.args["key_value"].startswith(
        "irsa-portal-verification-abc123def456"
    )
    assert other.args["key_type"] == "N" and other.args["key_value"].isdigit()
    assert own.id == "orders/own/dynamodb:PutItem/demo-a-orders"


def test_put_bucket_policy_puts_back_the_current_policy():
    probes, _ = plan(Row("sensitive", "s3_bucket", "s3:PutBucketPolicy", BUCKET, False))
    assert probes[0].op == "s3.put_bucket_policy"
    assert json.loads(probes[0].args["policy"]) == {"Version": "2012-10-17"}


def test_put_bucket_policy_on_a_bucket_without_one_denies_a_key_nobody_uses():
    bucket = "arn:aws:s3:::demo-b-files"
    probes, _ = plan(Row("sensitive", "s3_bucket", "s3:PutBucketPolicy", bucket, False))
    statement = json.loads(probes[0].args["policy"])["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Resource"].endswith("irsa-portal-verification/abc123def456-never")


def test_own_key_is_probed_through_s3_and_a_neighbour_key_directly():
    probes, skipped = plan(
        Row("own", "kms_key", "kms:GenerateDataKey", KEY, True, S3_VIA),
        Row("neighbour", "kms_key", "kms:GenerateDataKey", OTHER_KEY, False),
        Row("own", "kms_key", "kms:Decrypt", KEY, True, S3_VIA),
    )
    ops = {x.resource: (x.op, x.args) for x in probes}
    assert ops[KEY][0] == "s3.put_object_sse_kms" and ops[KEY][1]["bucket"] == "demo-a-files"
    assert ops[OTHER_KEY] == ("kms.generate_data_key", {"key_id": OTHER_KEY})
    assert [s.action for s in skipped] == ["kms:Decrypt"]


def test_own_key_through_dynamodb_is_probed_by_reading_an_own_table_under_it():
    """One probe per (key, action, service): the same action directly or through S3 is another."""
    probes, skipped = plan(
        Row("own", "kms_key", "kms:Decrypt", KEY, True, DYNAMODB_VIA),
        Row("own", "kms_key", "kms:GenerateDataKey", KEY, True, S3_VIA),
        Row("own", "kms_key", "kms:GenerateDataKey", KEY, True, DYNAMODB_VIA),
        Row("neighbour", "kms_key", "kms:Decrypt", OTHER_KEY, False, DYNAMODB_VIA),
    )
    by_id = {x.id: x for x in probes}
    through = by_id["orders/own/kms:Decrypt/1111@dynamodb"]
    assert through.op == "dynamodb.get_item" and through.expected
    assert through.args["table"] == "demo-a-orders" and through.args["key_name"] == "order_id"
    assert "orders/own/kms:GenerateDataKey/1111@s3" in by_id
    on_its_own = "no live call uses the key through dynamodb.us-east-1.amazonaws.com on its own"
    assert [(s.action, s.resource, s.reason) for s in skipped] == [
        ("kms:GenerateDataKey", KEY, on_its_own),
        ("kms:Decrypt", OTHER_KEY, on_its_own),  # B's table would refuse before B's key
    ]
    no_table = p.ProbeTargets(token="abc123def456", table_keys=TARGETS.table_keys)
    _, skipped = p.plan_probes(
        [Row("own", "kms_key", "kms:Decrypt", KEY, True, DYNAMODB_VIA)], sa="o", targets=no_table
    )
    assert skipped[0].reason == "no own table the role may read, to use the key through DynamoDB"


def test_rows_without_an_honest_call_are_skipped_with_a_reason():
    _, skipped = plan(
        Row("own", "dynamodb_table", "dynamodb:Query", TABLE + "/index/*", True),
        Row("own", "sqs_queue", "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q", True),
        Row("neighbour", "dynamodb_table", "dynamodb:GetItem", TABLE + "x", False),
    )
    assert [s.reason for s in skipped] == [
        "index ARNs are covered by the table's own probes",
        "no live probe for sqs actions",
        "the table's key schema could not be read",
    ]


def test_create_role_uses_a_probe_role_nobody_can_assume():
    role = "arn:aws:iam::123456789012:role/irsa/anything"
    probes, _ = plan(Row("sensitive", "iam_role", "iam:CreateRole", role, False))
    trust = json.loads(probes[0].args["trust"])
    assert probes[0].args["role_name"] == "irsa-portal-verification-abc123def456"
    assert trust["Statement"][0]["Effect"] == "Deny"


@pytest.mark.parametrize(
    ("expected", "outcome", "ok"),
    [
        (True, "allowed", True),
        (False, "denied", True),
        (True, "denied", False),
        (False, "allowed", False),
        (False, "error", False),  # an error is never counted as the expected denial
        (True, "error", False),
    ],
)
def test_interpretation(expected, outcome, ok):
    probe = p.Probe("id", "orders", "own", "s3_bucket", "s3:GetObject", BUCKET, expected, "", {})
    record = p.interpret(probe, {"outcome": outcome, "code": "X", "message": "m"})
    assert record["ok"] is ok and record["actual"] == outcome
    assert record["expected"] == ("allowed" if expected else "denied")


def test_a_probe_without_a_result_is_an_error():
    probe = p.Probe("id", "orders", "own", "s3_bucket", "s3:GetObject", BUCKET, False, "", {})
    assert p.interpret(probe, None)["actual"] == "error"


@pytest.mark.parametrize(
    ("op", "code", "outcome"),
    [
        ("dynamodb.get_item", "AccessDeniedException", "denied"),
        ("s3.put_object", "AccessDenied", "denied"),
        ("kms.encrypt", "AccessDeniedException", "denied"),
        ("dynamodb.get_item", "ResourceNotFoundException", "error"),
        ("s3.get_object", "NoSuchKey", "allowed"),  # only answered after authorization
        ("s3.put_object", "NoSuchKey", "error"),
        ("dynamodb.delete_table", "ValidationException", "allowed"),  # deletion protection
        ("dynamodb.get_item", "ValidationException", "error"),
        ("sts.get_caller_identity", "EndpointConnectionError", "error"),
    ],
)
def test_pod_classifies_access_denials_only_as_denied(op, code, outcome):
    assert classify(op, code) == outcome


def test_trust_probes_cover_listed_unlisted_and_another_namespace():
    trust = p.plan_trust_probes(namespace="shop", service_accounts=["orders", "worker"])
    assert [(t.sa, t.namespace, t.expected) for t in trust] == [
        ("orders", "shop", True),
        ("worker", "shop", True),
        ("irsa-verification-unlisted", "shop", False),
        ("orders", "shop-elsewhere", False),
    ]


def test_trust_record_from_a_refused_assume():
    probe = p.TrustProbe("x/trust/assume", "x", "shop", False)
    pod = {"assumed": False, "assume": {"outcome": "denied", "code": "AccessDenied", "message": ""}}
    record = p.interpret_trust(probe, role_arn="arn:aws:iam::1:role/irsa/r", pod=pod)
    assert record["ok"] and record["subject"] == "system:serviceaccount:shop:x"


def test_summary_lists_the_failed_probe_ids():
    records = [{"id": "a", "ok": True}, {"id": "b", "ok": False}]
    assert p.summarize(records, mode="live", duration_s=1.234)["failed"] == ["b"]


BASELINE = [
    {"arn": f"arn:aws:iam::aws:policy/{n}", "name": n, "document": None}
    for n in (
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryReadOnly",
    )
]


def test_node_role_with_only_the_baseline_is_clean():
    result = classify_node_role(role_arn="r", attached=BASELINE, inline=[])
    assert result["status"] == "clean" and result["flagged"] == []


def test_node_role_with_an_extra_policy_or_inline_policy_is_flagged():
    extra = {"arn": "arn:aws:iam::aws:policy/AmazonS3FullAccess", "name": "AmazonS3FullAccess"}
    result = classify_node_role(role_arn="r", attached=[*BASELINE, extra], inline=["debug"])
    assert result["status"] == "flagged"
    assert [f["policy"] for f in result["flagged"]] == [extra["arn"], "inline:debug"]


def test_a_stand_in_named_like_the_baseline_may_not_grant_other_services():
    document = {"Statement": [{"Effect": "Allow", "Action": ["ecr:BatchGetImage", "s3:GetObject"]}]}
    stand_in = {
        "arn": "arn:aws:iam::123456789012:policy/AmazonEC2ContainerRegistryReadOnly",
        "name": "AmazonEC2ContainerRegistryReadOnly",
        "document": document,
    }
    result = classify_node_role(role_arn="r", attached=[*BASELINE[:2], stand_in], inline=[])
    assert result["status"] == "flagged" and "s3:GetObject" in result["flagged"][0]["reason"]


def test_rows_on_absent_neighbour_resources_are_skipped_not_errors():
    targets = p.ProbeTargets(
        token="abc123def456", absent=frozenset({OTHER_KEY, "arn:aws:s3:::demo-b-files"})
    )
    probes, skipped = p.plan_probes(
        [
            Row("neighbour", "kms_key", "kms:Encrypt", OTHER_KEY, False),
            Row("neighbour", "s3_bucket", "s3:GetObject", "arn:aws:s3:::demo-b-files/x", False),
            Row("neighbour", "kms_key", "kms:Encrypt", KEY, False),
        ],
        sa="orders",
        targets=targets,
    )
    assert [x.resource for x in probes] == [KEY]
    assert {s.reason for s in skipped} == {"the resource does not exist or is not enabled"}


def test_the_key_through_s3_needs_a_bucket_the_role_may_write():
    targets = p.ProbeTargets(token="abc123def456", own_buckets=())
    _, skipped = p.plan_probes(
        [Row("own", "kms_key", "kms:GenerateDataKey", KEY, True, S3_VIA)], sa="o", targets=targets
    )
    assert "may write to" in skipped[0].reason
