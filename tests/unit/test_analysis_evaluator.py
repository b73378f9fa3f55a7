"""The policy evaluator: AWS semantics for statements, principals, conditions and request logic."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning.analysis.evaluator import (
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    Decision,
    evaluate,
    evaluate_request,
)

TABLE = "arn:aws:dynamodb:eu-west-1:111122223333:table/orders"
ROLE = "arn:aws:iam::111122223333:role/irsa/dev-orders"
ROOT = "arn:aws:iam::111122223333:root"
KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234"


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action="dynamodb:GetItem", resource=TABLE, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action="dynamodb:GetItem", resource=TABLE, **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(*statements: dict, action="dynamodb:GetItem", resource=TABLE, **kw) -> Decision:
    return evaluate([policy(*statements)], action=action, resource=resource, **kw)


def test_no_statement_is_an_implicit_deny():
    assert decide() == Decision(False, IMPLICIT_DENY, None, ())


def test_allow_names_the_deciding_sid_or_index():
    assert decide(allow(Sid="Read")) == Decision(True, ALLOW, "Read", ())
    assert decide(deny(action="s3:GetObject"), allow()).statement == "Statement[1]"


def test_explicit_deny_wins_over_any_allow_in_any_policy():
    result = evaluate(
        [policy(allow()), policy(deny(Sid="Never"))], action="dynamodb:GetItem", resource=TABLE
    )
    assert result == Decision(False, EXPLICIT_DENY, "Never", ())


def test_single_statement_object_and_string_values():
    single = {"Statement": allow(Sid="One")}
    assert evaluate([single], action="dynamodb:GetItem", resource=TABLE).allowed


def test_unknown_effect_and_missing_action_never_allow():
    assert not decide(allow(Effect="allow")).allowed
    assert not decide({"Effect": "Allow", "Resource": TABLE}).allowed


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("dynamodb:GetItem", "dynamodb:getitem", True),  # actions are case-insensitive
        ("dynamodb:Get*", "dynamodb:GetItem", True),
        ("dynamodb:*", "dynamodb:DeleteTable", True),
        ("*", "iam:CreateRole", True),
        ("dynamodb:?etItem", "dynamodb:GetItem", True),
        ("dynamodb:?etItem", "dynamodb:BatchGetItem", False),
        ("dynamodb:Get*", "s3:GetObject", False),
        (["s3:GetObject", "dynamodb:Query"], "dynamodb:Query", True),
    ],
)
def test_action_wildcards(pattern, action, expected):
    assert decide(allow(action=pattern), action=action).allowed is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        (TABLE, TABLE, True),
        (TABLE.upper(), TABLE, False),  # resources are case-sensitive
        (f"{TABLE}/index/*", f"{TABLE}/index/by-date", True),
        (f"{TABLE}/index/*", TABLE, False),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b.txt", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", False),
        ("arn:aws:s3:::bucke?", "arn:aws:s3:::bucket", True),
        ("*", "arn:aws:s3:::anything", True),
        ("arn:aws:s3:::a.b", "arn:aws:s3:::aXb", False),  # regex characters stay literal
    ],
)
def test_resource_wildcards(pattern, resource, expected):
    assert decide(allow(resource=pattern), resource=resource).allowed is expected


def test_not_action_applies_to_every_other_action():
    statement = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    assert decide(statement, action="s3:GetObject").allowed
    assert not decide(statement, action="iam:CreateRole").allowed
    guard = {"Effect": "Deny", "NotAction": ["dynamodb:Get*"], "Resource": "*", "Sid": "OnlyGet"}
    assert decide(allow(action="*"), guard, action="dynamodb:PutItem").effect == EXPLICIT_DENY
    assert decide(allow(action="*"), guard, action="dynamodb:GetItem").allowed


def test_not_resource_applies_to_every_other_resource():
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::x/*"}
    assert decide(statement, action="s3:GetObject", resource="arn:aws:s3:::y/k").allowed
    assert not decide(statement, action="s3:GetObject", resource="arn:aws:s3:::x/k").allowed


def test_statement_without_resource_matches_any_resource():
    trust = {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}
    assert decide(trust, action="sts:AssumeRole", resource=ROLE, principal=ROLE).allowed


@pytest.mark.parametrize(
    ("principal_element", "principal", "expected"),
    [
        ({"AWS": ROLE}, ROLE, True),
        ({"AWS": [ROOT, ROLE]}, ROLE, True),
        ({"AWS": ROOT}, ROLE, False),  # the root names the account, not each role in it
        ({"AWS": "111122223333"}, ROOT, True),  # a bare account id is its root
        ({"AWS": "111122223333"}, ROLE, False),
        ({"AWS": "*"}, ROLE, True),
        ("*", ROLE, True),
        ({"Federated": "arn:aws:iam::111122223333:oidc-provider/x"}, ROLE, False),
        (
            {"Federated": "arn:aws:iam::111122223333:oidc-provider/x"},
            "arn:aws:iam::111122223333:oidc-provider/x",
            True,
        ),
        ({"Service": "lambda.amazonaws.com"}, "lambda.amazonaws.com", True),
        ({"Service": "lambda.amazonaws.com"}, "ec2.amazonaws.com", False),
    ],
)
def test_principal_forms(principal_element, principal, expected):
    statement = allow(Principal=principal_element)
    assert decide(statement, principal=principal).allowed is expected


def test_a_role_arn_names_its_sessions():
    session = "arn:aws:sts::111122223333:assumed-role/dev-orders/botocore-session-1"
    assert decide(allow(Principal={"AWS": ROLE}), principal=session).allowed
    other = "arn:aws:sts::111122223333:assumed-role/dev-other/s"
    assert not decide(allow(Principal={"AWS": ROLE}), principal=other).allowed
    foreign = "arn:aws:sts::444455556666:assumed-role/dev-orders/s"
    assert not decide(allow(Principal={"AWS": ROLE}), principal=foreign).allowed
    assert decide(allow(Principal={"AWS": session}), principal=session).allowed


def test_session_of_the_role_uses_its_key_through_the_key_policy():
    session = "arn:aws:sts::111122223333:assumed-role/dev-orders/s"
    result = evaluate_request(
        identity_policies=[],
        action="kms:Decrypt",
        resource=KEY,
        principal=session,
        context=KEY_USE,
        resource_policy=key_policy(ROOT_ADMIN, ROLE_USE),
        resource_policy_required=True,
    )
    assert result.allowed and result.statement == "RoleUse"


def test_principal_statements_need_a_principal_and_identity_statements_match_any():
    assert not decide(allow(Principal={"AWS": ROLE})).allowed
    assert decide(allow(), principal=ROLE).allowed


def test_not_principal_matches_everyone_else():
    statement = deny(NotPrincipal={"AWS": ROLE}, Sid="OnlyTheRole")
    other = "arn:aws:iam::111122223333:role/other"
    assert decide(allow(), statement, principal=other).effect == EXPLICIT_DENY
    assert decide(allow(), statement, principal=ROLE).allowed


def cond(operator: str, key: str, value, context=None) -> bool:
    return decide(allow(Condition={operator: {key: value}}), context=context).allowed


@pytest.mark.parametrize(
    ("operator", "value", "request_value", "expected"),
    [
        ("StringEquals", "dynamodb.eu-west-1.amazonaws.com", "dynamodb.eu-west-1.amazonaws.com", 1),
        ("StringEquals", "Dynamodb", "dynamodb", 0),
        ("StringEquals", ["a", "b"], "b", 1),
        ("StringNotEquals", ["a", "b"], "c", 1),
        ("StringNotEquals", ["a", "b"], "a", 0),
        ("StringEqualsIgnoreCase", "DynamoDB", "dynamodb", 1),
        ("StringEqualsIgnoreCase", "DynamoDB", "s3", 0),
        ("StringNotEqualsIgnoreCase", "DynamoDB", "dynamodb", 0),
        ("StringLike", "system:serviceaccount:shop:*", "system:serviceaccount:shop:api", 1),
        ("StringLike", "system:serviceaccount:shop:?pi", "system:serviceaccount:shop:api", 1),
        ("StringLike", "system:serviceaccount:shop:*", "system:serviceaccount:kube:api", 0),
        ("StringNotLike", "a*", "abc", 0),
        ("StringNotLike", "a*", "xyz", 1),
        ("ArnEquals", ROLE, ROLE, 1),
        ("ArnLike", "arn:aws:iam::*:role/irsa/*", ROLE, 1),
        ("ArnLike", "arn:aws:iam::*:role/irsa/*", "arn:aws:iam::1:user/irsa/x", 0),
        ("ArnLike", "arn:aws:iam::*:role/*", "not-an-arn", 0),
        ("ArnNotEquals", ROLE, ROOT, 1),
        ("ArnNotLike", "arn:aws:iam::*:role/*", ROLE, 0),
        ("Bool", "true", "true", 1),
        ("Bool", True, "true", 1),
        ("Bool", "true", "false", 0),
        ("NumericEquals", "10", "10.0", 1),
        ("NumericNotEquals", "10", "11", 1),
        ("NumericLessThan", "10", "9", 1),
        ("NumericLessThan", "10", "10", 0),
        ("NumericLessThanEquals", "10", "10", 1),
        ("NumericGreaterThan", "10", "11", 1),
        ("NumericGreaterThan", "10", "ten", 0),
        ("NumericGreaterThanEquals", "10", "10", 1),
    ],
)
def test_condition_operators(operator, value, request_value, expected):
    assert cond(operator, "aws:SomeKey", value, {"aws:SomeKey": request_value}) is bool(expected)


def test_condition_keys_are_case_insensitive():
    assert cond("StringEquals", "kms:ViaService", "s3.x", {"KMS:VIASERVICE": "s3.x"})


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("StringEquals", False),  # a missing key fails a positive operator
        ("StringLike", False),
        ("Bool", False),
        ("StringNotEquals", True),  # ... and satisfies a negated one (AWS documents this)
        ("StringEqualsIfExists", True),
        ("ForAnyValue:StringEquals", False),
        ("ForAllValues:StringEquals", True),
    ],
)
def test_missing_key(operator, expected):
    assert cond(operator, "aws:Missing", "x", {"aws:Other": "x"}) is expected


def test_if_exists_still_checks_a_present_key():
    assert cond("StringEqualsIfExists", "aws:K", "x", {"aws:K": "x"})
    assert not cond("StringEqualsIfExists", "aws:K", "x", {"aws:K": "y"})


def test_null_operator():
    assert cond("Null", "aws:K", "true", {})
    assert not cond("Null", "aws:K", "true", {"aws:K": "v"})
    assert cond("Null", "aws:K", "false", {"aws:K": "v"})
    assert not cond("Null", "aws:K", "false", None)


def test_set_operators_over_multivalued_keys():
    tags = {"aws:TagKeys": ["team", "env"]}
    assert cond("ForAllValues:StringEquals", "aws:TagKeys", ["team", "env", "owner"], tags)
    assert not cond("ForAllValues:StringEquals", "aws:TagKeys", ["team"], tags)
    assert cond("ForAnyValue:StringEquals", "aws:TagKeys", ["env"], tags)
    assert not cond("ForAnyValue:StringEquals", "aws:TagKeys", ["owner"], tags)
    assert cond("ForAnyValue:StringNotEquals", "aws:TagKeys", ["team"], tags)
    assert not cond("ForAllValues:StringNotEquals", "aws:TagKeys", ["team"], tags)
    assert not cond("StringNotEquals", "aws:TagKeys", ["team"], tags)


def test_all_operators_and_keys_must_hold():
    both = {"StringEquals": {"aws:A": "1", "aws:B": "2"}, "Bool": {"aws:C": "true"}}
    context = {"aws:A": "1", "aws:B": "2", "aws:C": "true"}
    assert decide(allow(Condition=both), context=context).allowed
    assert not decide(allow(Condition=both), context={**context, "aws:B": "3"}).allowed


@pytest.mark.parametrize(
    "condition",
    [
        {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
        {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        {"ForAnyValue:BinaryEquals": {"aws:K": "QQ=="}},
        {"StringEquals": {"aws:K": "${aws:username}"}},
    ],
)
def test_unsupported_conditions_never_apply_and_are_reported(condition):
    result = decide(allow(Sid="Odd", Condition=condition), context={"aws:K": "x"})
    assert result.effect == IMPLICIT_DENY
    assert len(result.unevaluated_conditions) == 1
    assert result.unevaluated_conditions[0].startswith("Odd: ")
    guarded = decide(allow(Sid="Plain"), deny(Sid="Odd", Condition=condition))
    assert guarded.allowed and guarded.unevaluated_conditions[0].startswith("Odd: ")


def test_decision_to_dict_is_json_safe():
    assert Decision(False, IMPLICIT_DENY, None, ("S: Op",)).to_dict() == {
        "allowed": False,
        "effect": "implicit_deny",
        "statement": None,
        "unevaluated_conditions": ["S: Op"],
    }


# --- evaluate_request: identity + boundary + resource policy -------------------------------------

KEY_USE = {"kms:ViaService": "dynamodb.eu-west-1.amazonaws.com"}


def key_policy(*statements: dict) -> dict:
    return policy(*statements)


ROOT_ADMIN = {
    "Sid": "Admin",
    "Effect": "Allow",
    "Principal": {"AWS": ROOT},
    "Action": ["kms:DescribeKey", "kms:PutKeyPolicy"],
    "Resource": "*",
}
ROLE_USE = {
    "Sid": "RoleUse",
    "Effect": "Allow",
    "Principal": {"AWS": ROLE},
    "Action": ["kms:Decrypt"],
    "Resource": KEY,
    "Condition": {"StringEquals": {"kms:ViaService": "dynamodb.eu-west-1.amazonaws.com"}},
}


def kms_request(identity: list[dict], resource_policy: dict, action="kms:Decrypt", **kw):
    return evaluate_request(
        identity_policies=identity,
        action=action,
        resource=KEY,
        principal=ROLE,
        context=kw.pop("context", KEY_USE),
        resource_policy=resource_policy,
        resource_policy_required=True,
        **kw,
    )


def test_key_policy_naming_the_role_allows_without_identity_allow():
    result = kms_request([], key_policy(ROOT_ADMIN, ROLE_USE))
    assert result == Decision(True, ALLOW, "RoleUse", ())


def test_key_policy_condition_must_hold():
    assert not kms_request([], key_policy(ROLE_USE), context={"kms:ViaService": "s3.x"}).allowed


def test_root_delegation_needs_an_identity_allow():
    identity = [policy(allow(action="kms:DescribeKey", resource=KEY, Sid="Id"))]
    delegated = kms_request(identity, key_policy(ROOT_ADMIN), action="kms:DescribeKey")
    assert delegated == Decision(True, ALLOW, "Id", ())
    assert not kms_request([], key_policy(ROOT_ADMIN), action="kms:DescribeKey").allowed


def test_identity_allow_is_not_enough_when_the_key_policy_is_silent():
    identity = [policy(allow(action="kms:Encrypt", resource=KEY))]
    assert not kms_request(identity, key_policy(ROLE_USE), action="kms:Encrypt").allowed


def test_without_required_resource_policy_identity_alone_allows():
    result = evaluate_request(
        identity_policies=[policy(allow(Sid="Id"))],
        action="dynamodb:GetItem",
        resource=TABLE,
        principal=ROLE,
    )
    assert result == Decision(True, ALLOW, "Id", ())


def test_resource_policy_alone_allows_its_principal():
    bucket_policy = policy(
        allow(action="s3:GetObject", resource="arn:aws:s3:::b/*", Principal={"AWS": ROLE}, Sid="B")
    )
    result = evaluate_request(
        identity_policies=[],
        action="s3:GetObject",
        resource="arn:aws:s3:::b/k",
        principal=ROLE,
        resource_policy=bucket_policy,
    )
    assert result.allowed and result.statement == "B"


def test_an_explicit_deny_anywhere_wins():
    identity = [policy(allow(action="kms:*", resource=KEY))]
    deny_role = deny(action="kms:Decrypt", resource="*", Principal={"AWS": ROLE}, Sid="NoRole")
    result = kms_request(identity, key_policy(ROLE_USE, deny_role))
    assert result == Decision(False, EXPLICIT_DENY, "NoRole", ())
    deny_account = deny(action="kms:*", resource="*", Principal={"AWS": ROOT}, Sid="NoAccount")
    assert kms_request(identity, key_policy(ROLE_USE, deny_account)).effect == EXPLICIT_DENY
    boundary = policy(deny(action="kms:Decrypt", resource="*", Sid="Boundary"))
    assert kms_request(identity, key_policy(ROLE_USE), boundary=boundary).statement == "Boundary"


def test_boundary_must_allow():
    identity = [policy(allow())]
    narrow = policy(allow(action="s3:*", resource="*"))
    wide = policy(allow(action="dynamodb:*", resource="*", Sid="B"))
    request = {"action": "dynamodb:GetItem", "resource": TABLE, "principal": ROLE}
    assert not evaluate_request(identity_policies=identity, boundary=narrow, **request).allowed
    assert evaluate_request(identity_policies=identity, boundary=wide, **request).allowed


def test_request_reports_unevaluated_conditions_once():
    odd = {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}
    result = kms_request([], key_policy({**ROLE_USE, "Condition": odd}))
    assert not result.allowed
    assert result.unevaluated_conditions == ("RoleUse: DateLessThan",)


NAMES = st.text(alphabet="abcdefgh-", min_size=1, max_size=12)


@given(NAMES, NAMES)
def test_wildcard_star_matches_exactly_the_prefix(prefix, rest):
    resource = f"arn:aws:s3:::{prefix}{rest}"
    assert decide(
        allow(action="s3:GetObject", resource=f"arn:aws:s3:::{prefix}*"),
        action="s3:GetObject",
        resource=resource,
    ).allowed
    exact = decide(
        allow(action="s3:GetObject", resource=f"arn:aws:s3:::{prefix}"),
        action="s3:GetObject",
        resource=resource,
    ).allowed
    assert exact is (rest == "")
