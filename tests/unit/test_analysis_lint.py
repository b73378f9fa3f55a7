"""Policy lint: for every rule, a real policy that trips it and one that does not."""

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.analysis.findings import HIGH, RULES, Finding, blocking, severity_counts
from provisioning.analysis.lint import (
    ESCALATION_ACTIONS,
    catalog_sub_resource_wildcards,
    lint_identity_policy,
    lint_key_policy,
    lint_policies,
    lint_trust_policy,
)
from provisioning.iam.catalog import load_catalog
from provisioning.iam.policies import render_policies
from provisioning.iam.spec import parse_workspace_spec

ROOT = Path(__file__).parents[2]
REFERENCE = json.loads((ROOT / "docs/examples/reference-spec.json").read_text())
SPEC = parse_workspace_spec(REFERENCE)
PROVIDER = SPEC.cluster.oidc_provider_arn
ISSUER = SPEC.cluster.oidc_issuer
KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TABLE = "arn:aws:dynamodb:eu-west-1:111122223333:table/dev-eu--orders--orders"
BUCKET = "arn:aws:s3:::dev-eu--orders--invoices"
ROLE = "arn:aws:iam::111122223333:role/irsa/dev-eu--orders"
ACCOUNT_ROOT = "arn:aws:iam::111122223333:root"


def rendered(key_arn=KEY_ARN):
    return render_policies(SPEC, key_arn=key_arn)


def identity(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def rules(findings):
    return sorted({f.rule for f in findings})


def lint_id(*statements):
    return lint_identity_policy(identity(*statements))


def allow(actions, resources, **extra):
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def trust(**statement_changes):
    policy = copy.deepcopy(rendered()["trust_policy"])
    policy["Statement"][0].update(statement_changes)
    return policy


def trust_conditions(block):
    return trust(Condition=block)


GOOD_TRUST_CONDITIONS = {
    "StringEquals": {
        f"{ISSUER}:aud": "sts.amazonaws.com",
        f"{ISSUER}:sub": ["system:serviceaccount:shop:orders"],
    }
}


def test_generated_policies_have_no_findings_with_real_and_placeholder_keys():
    for key in (KEY_ARN, None):
        assert lint_policies(render_policies(SPEC, key_arn=key), oidc_provider_arn=PROVIDER) == []


def test_rule_table_is_complete_and_severities_known():
    assert all(r.severity in ("high", "medium", "low") for r in RULES.values())
    assert list(RULES) == [f"IRSA{i:03d}" for i in range(1, len(RULES) + 1)]


# IRSA001 action exists
def test_irsa001_unknown_action():
    found = lint_id(allow(["dynamodb:GetItems", "dynamodb:GetItem"], [TABLE]))
    assert [(f.rule, f.location) for f in found] == [
        ("IRSA001", "identity_policy.Statement[0].Action[0]")
    ]
    assert "dynamodb:GetItems" in found[0].message
    assert lint_id(allow("nosuchservice:Get", [TABLE]))[0].rule == "IRSA001"
    assert lint_id(allow(["dynamodb:getitem"], [TABLE])) == []  # IAM is case-insensitive


# IRSA002 action applies to the resource type
def test_irsa002_action_on_the_wrong_resource_type():
    found = lint_id(allow(["s3:GetObject"], [BUCKET]))  # objects live at bucket/*
    assert "IRSA002" in rules(found)
    assert found[0].location == "identity_policy.Statement[0].Action[0]"
    assert lint_id(allow(["s3:GetObject"], [f"{BUCKET}/*"])) == []
    assert rules(lint_id(allow(["dynamodb:GetItem"], [KEY_ARN]))) == ["IRSA002", "IRSA008"]


def test_irsa002_action_without_resource_level_permissions():
    found = lint_id(allow(["s3:ListAllMyBuckets"], [BUCKET]))
    assert [f.rule for f in found] == ["IRSA002", "IRSA008"]
    assert "only on '*'" in found[0].message


def test_irsa002_placeholder_key_arn_is_a_kms_key_arn():
    placeholder = rendered(key_arn=None)["kms_key"]["arn"]
    assert placeholder.endswith("<key-id-assigned-on-apply>")
    assert lint_id(allow(["kms:Decrypt"], [placeholder])) == []


# IRSA003 no wildcard in actions
@pytest.mark.parametrize("action", ["dynamodb:*", "dynamodb:Get*", "*", "s3:GetObjec?"])
def test_irsa003_wildcard_action(action):
    found = lint_id(allow([action], [TABLE]))
    assert "IRSA003" in rules(found)


def test_irsa003_wildcards_in_a_deny_are_fine():
    deny = {"Effect": "Deny", "Action": "dynamodb:*", "Resource": TABLE}
    assert lint_id(allow(["dynamodb:GetItem"], [TABLE]), deny) == []


# IRSA004 no wildcard resources beyond the catalog's patterns
@pytest.mark.parametrize(
    "resource",
    [
        "*",
        "arn:aws:s3:::*",
        "arn:aws:s3:::dev-eu-*/*",
        "arn:aws:dynamodb:eu-west-1:111122223333:table/*",
        f"{TABLE}/*",  # "/*" is the catalog's S3 object pattern, not a DynamoDB one
        f"{TABLE}/index/by-?",
    ],
)
def test_irsa004_wildcard_resource(resource):
    assert "IRSA004" in rules(lint_id(allow(["dynamodb:Query"], [resource])))


def test_irsa004_catalog_patterns_pass_and_come_from_the_catalog():
    assert catalog_sub_resource_wildcards(load_catalog()) == {
        ("dynamodb", "/index/*"),
        ("s3", "/*"),
    }
    assert lint_id(allow(["dynamodb:Query"], [TABLE, f"{TABLE}/index/*"])) == []
    assert lint_id(allow(["s3:GetObject"], [f"{BUCKET}/*"])) == []


# IRSA005 escalation and administration actions
@pytest.mark.parametrize(
    "action",
    [
        "iam:PassRole",
        "sts:AssumeRole",
        "kms:CreateGrant",
        "kms:PutKeyPolicy",
        "s3:PutBucketPolicy",
        "dynamodb:DeleteTable",
        "s3:DeleteBucket",
        "kms:ScheduleKeyDeletion",
    ],
)
def test_irsa005_escalation_action(action):
    found = lint_id(allow([action], ["*"]))
    assert "IRSA005" in rules(found)


def test_irsa005_wildcards_that_cover_escalation_are_flagged_too():
    found = lint_id(allow(["kms:*"], [KEY_ARN]))
    assert rules(found) == ["IRSA003", "IRSA005"]
    assert "covers" in next(f for f in found if f.rule == "IRSA005").message


def test_irsa005_escalation_list_is_documented():
    assert all(reason for reason in ESCALATION_ACTIONS.values())
    assert lint_id(allow(["dynamodb:PutItem"], [TABLE])) == []


def test_irsa005_key_policy_root_administration_is_expected_but_not_for_the_role():
    policy = copy.deepcopy(rendered()["key_policy"])
    assert lint_key_policy(policy, role_arn=ROLE) == []
    policy["Statement"][2]["Action"] = ["kms:Decrypt", "kms:PutKeyPolicy"]
    found = lint_key_policy(policy, role_arn=ROLE)
    assert [(f.rule, f.location) for f in found] == [
        ("IRSA005", "key_policy.Statement[2].Action[1]")
    ]


# IRSA006 Allow with NotAction / NotResource / NotPrincipal
def test_irsa006_not_action_and_not_resource():
    found = lint_id({"Effect": "Allow", "NotAction": "iam:*", "NotResource": TABLE})
    assert [(f.rule, f.location) for f in found] == [
        ("IRSA006", "identity_policy.Statement[0].NotAction"),
        ("IRSA006", "identity_policy.Statement[0].NotResource"),
    ]
    deny = {"Effect": "Deny", "NotAction": "dynamodb:GetItem", "Resource": TABLE}
    assert lint_id(allow(["dynamodb:GetItem"], [TABLE]), deny) == []


# IRSA007 size limits
def test_irsa007_identity_policy_size():
    resources = [f"{TABLE}-{i:04d}" for i in range(100)]
    found = lint_id(allow(["dynamodb:GetItem"], resources))
    assert rules(found) == ["IRSA007"]
    assert "6,144" in found[0].message and found[0].location == "identity_policy"
    assert lint_id(allow(["dynamodb:GetItem"], resources[:10])) == []


def test_irsa007_trust_policy_size():
    subjects = [f"system:serviceaccount:shop:account-{i:03d}" for i in range(60)]
    block = {"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com", f"{ISSUER}:sub": subjects}}
    found = lint_trust_policy(trust_conditions(block), oidc_provider_arn=PROVIDER)
    assert rules(found) == ["IRSA007"] and "2,048" in found[0].message
    assert (
        lint_trust_policy(trust_conditions(GOOD_TRUST_CONDITIONS), oidc_provider_arn=PROVIDER) == []
    )


def test_irsa007_placeholder_is_measured_as_a_real_key_id():
    document = rendered(key_arn=None)
    real = rendered()
    statement = document["identity_policy"]["Statement"][0]
    # pad the identity policy so the placeholder version fits but a real key id would not
    room = 6144 - len(json.dumps(real["identity_policy"], separators=(",", ":")))
    statement["Sid"] += "x" * room
    real["identity_policy"]["Statement"][0]["Sid"] += "x" * room
    assert lint_policies(real, oidc_provider_arn=PROVIDER) == []
    document["identity_policy"]["Statement"][0]["Sid"] += "x"
    assert rules(lint_policies(document, oidc_provider_arn=PROVIDER)) == ["IRSA007"]


# IRSA008 resources no action uses
def test_irsa008_unused_resource():
    found = lint_id(allow(["s3:GetObject"], [f"{BUCKET}/*", BUCKET]))
    assert [(f.rule, f.location) for f in found] == [
        ("IRSA008", "identity_policy.Statement[0].Resource[1]")
    ]
    assert lint_id(allow(["s3:GetObject", "s3:ListBucket"], [f"{BUCKET}/*", BUCKET])) == []


# IRSA009 identity policies name no principal
def test_irsa009_principal_in_identity_policy():
    found = lint_id(allow(["dynamodb:GetItem"], [TABLE], Principal={"AWS": ROLE}))
    assert rules(found) == ["IRSA009"]


# IRSA010 trust: the cluster's own OIDC provider
def test_irsa010_other_provider_or_other_principal():
    other = PROVIDER.replace("5C7A", "0000")
    found = lint_trust_policy(trust(Principal={"Federated": other}), oidc_provider_arn=PROVIDER)
    assert [(f.rule, f.location) for f in found] == [
        ("IRSA010", "trust_policy.Statement[0].Principal.Federated"),
        ("IRSA015", f"trust_policy.Statement[0].Condition.StringEquals.{ISSUER}:aud"),
        ("IRSA015", f"trust_policy.Statement[0].Condition.StringEquals.{ISSUER}:sub"),
    ]
    aws = lint_trust_policy(trust(Principal={"AWS": ROLE}), oidc_provider_arn=PROVIDER)
    assert rules(aws) == ["IRSA010"]
    not_oidc = lint_trust_policy(trust(Principal={"Federated": "cognito-identity.amazonaws.com"}))
    assert rules(not_oidc) == ["IRSA010"]
    assert lint_trust_policy(trust(), oidc_provider_arn=PROVIDER) == []
    assert lint_trust_policy(trust()) == []  # without a cluster: any well-formed OIDC provider


# IRSA011 trust: exactly AssumeRoleWithWebIdentity
@pytest.mark.parametrize(
    "action", ["sts:AssumeRole", "sts:*", ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]]
)
def test_irsa011_trust_action(action):
    assert rules(lint_trust_policy(trust(Action=action), oidc_provider_arn=PROVIDER)) == ["IRSA011"]


def test_irsa011_list_of_the_one_action_passes():
    assert lint_trust_policy(trust(Action=["sts:AssumeRoleWithWebIdentity"])) == []


# IRSA012 trust: aud
@pytest.mark.parametrize(
    "block",
    [
        {"StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:shop:orders"}},
        {
            "StringEquals": {
                f"{ISSUER}:aud": "other",
                f"{ISSUER}:sub": "system:serviceaccount:shop:orders",
            }
        },
        {
            "StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:shop:orders"},
            "StringLike": {f"{ISSUER}:aud": "sts.*"},
        },
    ],
)
def test_irsa012_audience(block):
    assert "IRSA012" in rules(lint_trust_policy(trust_conditions(block)))


# IRSA013 trust: sub with StringEquals only, exact subjects
@pytest.mark.parametrize(
    "block",
    [
        {"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"}},
        {
            "StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"},
            "StringLike": {f"{ISSUER}:sub": "system:serviceaccount:shop:*"},
        },
        {
            "StringEquals": {
                f"{ISSUER}:aud": "sts.amazonaws.com",
                f"{ISSUER}:sub": "system:serviceaccount:shop:*",
            }
        },
        {"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com", f"{ISSUER}:sub": "orders"}},
    ],
)
def test_irsa013_subject(block):
    found = lint_trust_policy(trust_conditions(block), oidc_provider_arn=PROVIDER)
    assert "IRSA013" in rules(found)
    assert all(f.severity == HIGH for f in found)


def test_irsa013_missing_conditions_entirely():
    found = lint_trust_policy(trust(Condition=None), oidc_provider_arn=PROVIDER)
    assert rules(found) == ["IRSA012", "IRSA013"]


# IRSA014 principal "*"
def test_irsa014_wildcard_principal_in_trust_and_key_policies():
    assert rules(lint_trust_policy(trust(Principal="*"))) == ["IRSA014"]
    assert rules(lint_trust_policy(trust(Principal={"Federated": "*"}))) == ["IRSA014"]
    key = copy.deepcopy(rendered()["key_policy"])
    key["Statement"][2]["Principal"] = {"AWS": "*"}
    assert rules(lint_key_policy(key, role_arn=ROLE)) == ["IRSA014"]


# IRSA015 trust: condition keys of the provider's issuer
def test_irsa015_foreign_issuer_keys():
    other = ISSUER.replace("5C7A", "0000")
    block = {
        "StringEquals": {
            f"{other}:aud": "sts.amazonaws.com",
            f"{other}:sub": "system:serviceaccount:shop:orders",
        }
    }
    found = lint_trust_policy(trust_conditions(block), oidc_provider_arn=PROVIDER)
    assert rules(found) == ["IRSA015"]


# IRSA016 key: only the root and the service role
def test_irsa016_other_principal_may_use_the_key():
    key = copy.deepcopy(rendered()["key_policy"])
    key["Statement"][2]["Principal"] = {"AWS": [ROLE, "arn:aws:iam::111122223333:role/other"]}
    found = lint_key_policy(key, role_arn=ROLE)
    assert [(f.rule, f.location) for f in found] == [
        ("IRSA016", "key_policy.Statement[2].Principal")
    ]
    assert lint_key_policy(key) == []  # without the role to compare against


# IRSA017 key: the role's use limited by kms:ViaService
def test_irsa017_role_use_without_via_service():
    key = copy.deepcopy(rendered()["key_policy"])
    del key["Statement"][2]["Condition"]
    assert rules(lint_key_policy(key, role_arn=ROLE)) == ["IRSA017"]


def test_key_policy_resource_star_is_the_key_itself():
    key = copy.deepcopy(rendered()["key_policy"])
    for statement in key["Statement"]:
        statement["Resource"] = "*"
    assert lint_key_policy(key, role_arn=ROLE) == []


def test_blocking_and_counts():
    findings = [
        Finding("IRSA003", "high", "m", "l"),
        Finding("IRSA002", "medium", "m", "l"),
        Finding("IRSA008", "low", "m", "l"),
    ]
    assert blocking(findings) == findings[:1]
    assert severity_counts(findings) == {"high": 1, "medium": 1, "low": 1}
    assert findings[0].to_dict() == {
        "rule": "IRSA003",
        "severity": "high",
        "message": "m",
        "location": "l",
    }


def test_malformed_policies_do_not_crash():
    assert lint_identity_policy({}) == []
    assert lint_identity_policy({"Statement": "nonsense"}) == []
    assert rules(lint_trust_policy({"Statement": {"Effect": "Allow"}})) == [
        "IRSA010",
        "IRSA011",
        "IRSA012",
        "IRSA013",
    ]


CATALOG = load_catalog()


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.builds(
            lambda kind, name, level: {"kind": kind, "name": name, "access": level},
            st.sampled_from(sorted(CATALOG.kinds)),
            st.sampled_from(["a", "bb", "orders", "logs-2"]),
            st.sampled_from(["read", "read_write"]),
        ),
        min_size=1,
        max_size=8,
        unique_by=lambda r: (r["kind"], r["name"]),
    ),
    st.lists(st.sampled_from(["api", "worker", "cron"]), min_size=1, max_size=3, unique=True),
)
def test_every_generated_policy_is_clean(resources, accounts):
    data = {**REFERENCE, "resources": resources, "service_accounts": accounts}
    spec = parse_workspace_spec(data)
    for key in (None, KEY_ARN):
        document = render_policies(spec, key_arn=key)
        assert lint_policies(document, oidc_provider_arn=PROVIDER) == []
