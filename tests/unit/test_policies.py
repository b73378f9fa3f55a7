"""Golden documents for the reference microservice, and properties over random valid specs."""

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.iam import naming
from provisioning.iam.catalog import ARN_TOKEN, load_catalog
from provisioning.iam.policies import (
    build_identity_policy,
    build_key_policy,
    build_trust_policy,
    render_policies,
)
from provisioning.iam.spec import parse_workspace_spec

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "golden"
REFERENCE = json.loads((ROOT / "docs/examples/reference-spec.json").read_text())
KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def golden(name: str) -> dict:
    return json.loads((GOLDEN / f"reference_{name}.json").read_text())


def test_identity_policy_matches_golden():
    spec = parse_workspace_spec(REFERENCE)
    assert build_identity_policy(spec, key_arn=KEY_ARN) == golden("identity_policy")


def test_trust_policy_matches_golden():
    assert build_trust_policy(parse_workspace_spec(REFERENCE)) == golden("trust_policy")


def test_key_policy_matches_golden():
    spec = parse_workspace_spec(REFERENCE)
    assert build_key_policy(spec, key_arn=KEY_ARN) == golden("key_policy")


def test_preview_marks_the_key_as_a_placeholder_until_it_exists():
    spec = parse_workspace_spec(REFERENCE)
    pending = render_policies(spec)
    assert pending["kms_key"]["placeholder"] is True
    assert pending["kms_key"]["arn"].endswith(":key/<key-id-assigned-on-apply>")
    real = render_policies(spec, key_arn=KEY_ARN)
    assert real["kms_key"] == {
        "arn": KEY_ARN,
        "alias": "alias/irsa/dev-eu--orders",
        "placeholder": False,
    }
    assert [(r["kind"], r["name"], r["arn"]) for r in real["resources"]] == [
        (
            "dynamodb_table",
            "orders",
            "arn:aws:dynamodb:eu-west-1:111122223333:table/dev-eu--orders--orders",
        ),
        ("s3_bucket", "invoices", "arn:aws:s3:::dev-eu--orders--invoices"),
    ]


# --- properties over random valid specs ------------------------------------------------------
label = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
CATALOG = load_catalog()
resource = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(sorted(CATALOG.kinds)),
        "name": label,
        "access": st.sampled_from(["read", "read_write"]),
    }
)
specs = st.fixed_dictionaries(
    {
        "microservice": label,
        "namespace": label,
        "service_accounts": st.lists(label, min_size=1, max_size=4, unique=True),
        "cluster": st.fixed_dictionaries(
            {
                "name": label,
                "account_id": st.from_regex(r"[0-9]{12}", fullmatch=True),
                "region": st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2"]),
            }
        ),
        "resources": st.lists(
            resource, min_size=1, max_size=8, unique_by=lambda r: (r["kind"], r["name"])
        ),
        "oidc_id": st.from_regex(r"[0-9A-F]{32}", fullmatch=True),
    }
)


def to_spec(data: dict):
    data = dict(data)
    oidc_id = data.pop("oidc_id")
    cluster = dict(data["cluster"])
    cluster["oidc_provider_arn"] = (
        f"arn:aws:iam::{cluster['account_id']}:oidc-provider/"
        f"oidc.eks.{cluster['region']}.amazonaws.com/id/{oidc_id}"
    )
    return parse_workspace_spec({**data, "cluster": cluster})


def allowed_by_catalog(spec) -> dict[str, tuple[set[str], set[str]]]:
    """Per resource ARN: the catalog actions and concrete resource strings it may receive."""
    allowed = {}
    for r in spec.resources:
        arn = naming.resource_arn(spec, r)
        level = CATALOG.level(r.kind, r.access)
        allowed[arn] = (
            {a for s in level.statements for a in s.actions},
            {p.replace(ARN_TOKEN, arn) for s in level.statements for p in s.resources},
        )
    return allowed


@settings(max_examples=200, deadline=None)
@given(specs)
def test_identity_policy_grants_only_catalog_actions_on_own_arns(data):
    spec = to_spec(data)
    key_arn = naming.size_check_kms_key_arn(spec)
    policy = build_identity_policy(spec, key_arn=key_arn)
    allowed = allowed_by_catalog(spec)
    granted: set[str] = set()
    *service_statements, kms = policy["Statement"]
    for statement in service_statements:
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement
        for resource_string in statement["Resource"]:
            owners = [
                arn for arn, (_, resources) in allowed.items() if resource_string in resources
            ]
            assert owners, f"{resource_string} is not one of the spec's own ARNs or sub-patterns"
            for action in statement["Action"]:
                assert "*" not in action
                assert any(action in allowed[arn][0] for arn in owners)
            granted.add(resource_string)
    assert granted == set().union(*(resources for _, resources in allowed.values()))
    assert kms["Resource"] == [key_arn]
    assert all(a.startswith("kms:") and "*" not in a for a in kms["Action"])
    assert set(kms["Condition"]) == {"StringEquals"}


@settings(max_examples=200, deadline=None)
@given(specs)
def test_trust_policy_is_string_equals_on_sub_and_aud_only(data):
    spec = to_spec(data)
    (statement,) = build_trust_policy(spec)["Statement"]
    issuer = spec.cluster.oidc_issuer
    assert statement["Principal"] == {"Federated": spec.cluster.oidc_provider_arn}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert set(statement["Condition"]) == {"StringEquals"}
    condition = statement["Condition"]["StringEquals"]
    assert set(condition) == {f"{issuer}:sub", f"{issuer}:aud"}
    assert condition[f"{issuer}:aud"] == "sts.amazonaws.com"
    assert condition[f"{issuer}:sub"] == sorted(
        f"system:serviceaccount:{spec.namespace}:{sa}" for sa in spec.service_accounts
    )


@settings(max_examples=100, deadline=None)
@given(specs, st.randoms())
def test_policies_do_not_depend_on_input_order(data, rnd):
    shuffled = dict(
        data, resources=list(data["resources"]), service_accounts=list(data["service_accounts"])
    )
    rnd.shuffle(shuffled["resources"])
    rnd.shuffle(shuffled["service_accounts"])
    a, b = to_spec(data), to_spec(shuffled)
    key = naming.size_check_kms_key_arn(a)
    assert render_policies(a, key_arn=key) == render_policies(b, key_arn=key)


@settings(max_examples=100, deadline=None)
@given(specs)
def test_key_policy_lets_only_the_service_role_use_the_key(data):
    spec = to_spec(data)
    key_arn = naming.size_check_kms_key_arn(spec)
    statements = build_key_policy(spec, key_arn=key_arn)["Statement"]
    usage = [
        s
        for s in statements
        if s["Principal"]["AWS"] != (f"arn:aws:iam::{spec.cluster.account_id}:root")
    ]
    assert [s["Principal"]["AWS"] for s in usage] == [naming.role_arn(spec)]
    assert all(s["Resource"] == [key_arn] for s in statements)
    assert all("*" not in a for s in statements for a in s["Action"])
