"""Grants from generated policies, the grant diff and the change classification."""

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.analysis.diff import (
    CLASSIFICATION_LABELS,
    Classification,
    classify_change,
    diff_grants,
)
from provisioning.analysis.grants import (
    EMPTY,
    IdentityGrant,
    KeyGrant,
    TrustGrant,
    expanded_conditions,
    split_subject,
    workspace_grants,
)
from provisioning.iam import naming
from provisioning.iam.catalog import load_catalog
from provisioning.iam.policies import render_policies
from provisioning.iam.spec import parse_workspace_spec

ROOT = Path(__file__).parents[2]
REFERENCE = json.loads((ROOT / "docs/examples/reference-spec.json").read_text())
KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/5C7A1E8B9D4F2A6E3B0C1D2E3F4A5B6C"
PROVIDER = f"arn:aws:iam::111122223333:oidc-provider/{ISSUER}"
TABLE = "arn:aws:dynamodb:eu-west-1:111122223333:table/dev-eu--orders--orders"
BUCKET = "arn:aws:s3:::dev-eu--orders--invoices"
ROLE = "arn:aws:iam::111122223333:role/irsa/dev-eu--orders"


def spec_with(**changes):
    data = copy.deepcopy(REFERENCE)
    data.update(changes)
    return parse_workspace_spec(data)


def grants_of(spec):
    return workspace_grants(render_policies(spec, key_arn=KEY_ARN))


def test_identity_grants_are_action_resource_pairs_that_can_take_effect():
    grants = grants_of(spec_with())
    assert IdentityGrant("dynamodb:PutItem", TABLE) in grants.identity
    assert IdentityGrant("dynamodb:Query", f"{TABLE}/index/*") in grants.identity
    # GetItem cannot address an index: IAM's data says so, so it is no grant.
    assert IdentityGrant("dynamodb:GetItem", f"{TABLE}/index/*") not in grants.identity
    assert IdentityGrant("s3:GetObject", f"{BUCKET}/*") in grants.identity
    assert IdentityGrant("s3:ListBucket", BUCKET) in grants.identity
    assert not any(g.action == "s3:PutObject" for g in grants.identity)


def test_kms_grants_expand_one_per_via_service():
    grants = grants_of(spec_with())
    via = [
        g.conditions for g in grants.identity if g.action == "kms:Decrypt" and g.resource == KEY_ARN
    ]
    assert sorted(via) == [
        (("StringEquals", "kms:ViaService", ("dynamodb.eu-west-1.amazonaws.com",)),),
        (("StringEquals", "kms:ViaService", ("s3.eu-west-1.amazonaws.com",)),),
    ]


def test_trust_grants_name_provider_namespace_account_and_audience():
    grants = grants_of(spec_with(service_accounts=["orders", "worker"]))
    assert grants.trust == frozenset(
        {
            TrustGrant(PROVIDER, "shop", "orders", "sts.amazonaws.com"),
            TrustGrant(PROVIDER, "shop", "worker", "sts.amazonaws.com"),
        }
    )


def test_key_grants_name_root_administration_and_role_use():
    grants = grants_of(spec_with())
    root = "arn:aws:iam::111122223333:root"
    assert KeyGrant(root, "kms:PutKeyPolicy") in grants.key
    assert (
        KeyGrant(root, "kms:CreateGrant", (("Bool", "kms:GrantIsForAWSResource", ("true",)),))
        in grants.key
    )
    role_actions = {g.action for g in grants.key if g.principal == ROLE}
    assert role_actions == {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"}


def test_no_policies_grant_nothing_and_to_dict_is_sorted_json():
    assert workspace_grants(None) == EMPTY
    assert not EMPTY
    data = grants_of(spec_with()).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["identity"] == sorted(data["identity"], key=lambda g: (g["action"], g["resource"]))
    assert data["trust"][0] == {
        "provider": PROVIDER,
        "namespace": "shop",
        "service_account": "orders",
        "audience": "sts.amazonaws.com",
    }


def test_expanded_conditions_keep_negated_lists_whole():
    block = {"StringNotEquals": {"aws:K": ["a", "b"]}, "StringEquals": {"aws:J": ["x", "y"]}}
    assert expanded_conditions(block) == [
        (("StringEquals", "aws:J", ("x",)), ("StringNotEquals", "aws:K", ("a", "b"))),
        (("StringEquals", "aws:J", ("y",)), ("StringNotEquals", "aws:K", ("a", "b"))),
    ]
    assert expanded_conditions(None) == [()]


def test_split_subject():
    assert split_subject("system:serviceaccount:shop:orders") == ("shop", "orders")
    assert split_subject("repo:org/x") == ("", "repo:org/x")


# --- diff and classification over the catalog's changes -------------------------------------


def diff(live_spec, proposed_spec):
    live = grants_of(live_spec) if live_spec else None
    proposed = grants_of(proposed_spec) if proposed_spec else None
    return diff_grants(live, proposed)


def test_create_adds_everything_and_is_a_new_trust_subject():
    d = diff(None, spec_with())
    assert d.added == grants_of(spec_with()) and not d.removed and not d.unchanged
    assert classify_change([d], decommission=False) is Classification.NEW_TRUST_SUBJECT


def test_adding_a_resource_is_new_access_on_own_resources():
    resources = REFERENCE["resources"] + [
        {"kind": "s3_bucket", "name": "exports", "access": "read"}
    ]
    d = diff(spec_with(), spec_with(resources=resources))
    exports = "arn:aws:s3:::dev-eu--orders--exports"
    assert IdentityGrant("s3:ListBucket", exports) in d.added.identity
    assert not d.removed and not d.added.trust
    assert classify_change([d], decommission=False) is Classification.NEW_ACCESS_OWN


def test_removing_a_resource_is_no_new_access_even_when_via_services_shrink():
    d = diff(spec_with(), spec_with(resources=REFERENCE["resources"][:1]))
    assert IdentityGrant("s3:ListBucket", BUCKET) in d.removed.identity
    assert not d.added, d.added  # the KMS ViaService list narrowed: removals only
    assert classify_change([d], decommission=False) is Classification.NO_NEW_ACCESS


def test_widening_read_to_read_write_adds_write_actions():
    resources = copy.deepcopy(REFERENCE["resources"])
    resources[1]["access"] = "read_write"
    d = diff(spec_with(), spec_with(resources=resources))
    assert IdentityGrant("s3:PutObject", f"{BUCKET}/*") in d.added.identity
    assert IdentityGrant("s3:GetObject", f"{BUCKET}/*") in d.unchanged.identity
    assert classify_change([d], decommission=False) is Classification.NEW_ACCESS_OWN


def test_narrowing_read_write_to_read_is_no_new_access():
    resources = copy.deepcopy(REFERENCE["resources"])
    resources[0]["access"] = "read"
    d = diff(spec_with(), spec_with(resources=resources))
    assert IdentityGrant("dynamodb:PutItem", TABLE) in d.removed.identity
    assert (
        KeyGrant(
            ROLE,
            "kms:Encrypt",
            (("StringEquals", "kms:ViaService", ("dynamodb.eu-west-1.amazonaws.com",)),),
        )
        in d.removed.key
    )
    assert classify_change([d], decommission=False) is Classification.NO_NEW_ACCESS


def test_adding_a_service_account_is_a_new_trust_subject():
    d = diff(spec_with(), spec_with(service_accounts=["orders", "worker"]))
    assert d.added.trust == {TrustGrant(PROVIDER, "shop", "worker", "sts.amazonaws.com")}
    assert not d.added.identity
    assert classify_change([d], decommission=False) is Classification.NEW_TRUST_SUBJECT


def test_decommission_removes_everything_and_wins_over_everything():
    d = diff(spec_with(), None)
    assert d.removed == grants_of(spec_with()) and not d.added
    create = diff(None, spec_with())
    assert classify_change([create, d], decommission=True) is Classification.DECOMMISSION


def test_the_riskiest_workspace_decides():
    narrow = diff(spec_with(), spec_with(resources=REFERENCE["resources"][:1]))
    wider = diff(spec_with(), spec_with(service_accounts=["orders", "api"]))
    assert classify_change([narrow], decommission=False) is Classification.NO_NEW_ACCESS
    assert classify_change([narrow, wider], decommission=False) is Classification.NEW_TRUST_SUBJECT
    assert classify_change([], decommission=False) is Classification.NO_NEW_ACCESS


def test_unchanged_spec_has_an_empty_diff_and_to_dict():
    d = diff(spec_with(), spec_with())
    assert not d.changed
    assert d.to_dict()["added"] == {"identity": [], "trust": [], "key": []}


def test_every_classification_has_a_label():
    assert set(CLASSIFICATION_LABELS) == set(Classification)
    assert Classification.DECOMMISSION.label == "Decommission (deletes data)"
    assert Classification("new_access_own_resources") is Classification.NEW_ACCESS_OWN


CATALOG = load_catalog()
RESOURCE = st.builds(
    lambda kind, name, level: {"kind": kind, "name": name, "access": level},
    st.sampled_from(sorted(CATALOG.kinds)),
    st.sampled_from(["a", "b", "c", "d"]),
    st.sampled_from(["read", "read_write"]),
)
RESOURCES = st.lists(RESOURCE, min_size=1, max_size=5, unique_by=lambda r: (r["kind"], r["name"]))


@settings(max_examples=40, deadline=None)
@given(RESOURCES, RESOURCES)
def test_diff_partitions_both_sides(before, after):
    live, proposed = grants_of(spec_with(resources=before)), grants_of(spec_with(resources=after))
    d = diff_grants(live, proposed)
    for section in ("identity", "trust", "key"):
        added, removed, same = (getattr(x, section) for x in (d.added, d.removed, d.unchanged))
        assert added | same == getattr(proposed, section)
        assert removed | same == getattr(live, section)
        assert not (added & removed)
    subset = all(
        any(
            (r["kind"], r["name"]) == (b["kind"], b["name"])
            and (r["access"] == b["access"] or r["access"] == "read")
            for b in before
        )
        for r in after
    )
    if subset:  # only removals and narrowings: never new access
        assert classify_change([d], decommission=False) is Classification.NO_NEW_ACCESS


@pytest.mark.parametrize("kind", sorted(CATALOG.kinds))
@pytest.mark.parametrize("level", ["read", "read_write"])
def test_every_kind_and_level_grants_its_catalog_actions(kind, level):
    spec = spec_with(resources=[{"kind": kind, "name": "x", "access": level}])
    arn = naming.resource_arn(spec, spec.resources[0])
    actions = {g.action for g in grants_of(spec).identity if g.resource.startswith(arn)}
    expected = {a for s in CATALOG.level(kind, level).statements for a in s.actions}
    assert actions == expected
