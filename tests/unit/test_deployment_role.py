"""The per-cluster deployment role: rendered as the provider's assume_role (values only in the
tfvars), named sessions, and the cluster's validation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from provisioning.aws import DeploymentRole, deployment_role, session_name
from provisioning.iam.spec import parse_workspace_spec
from provisioning.models import Cluster
from provisioning.terraform.context import boundary_in_account
from provisioning.terraform.render import MAIN_FILE, TFVARS_FILE, render_workspace

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = json.loads((ROOT / "docs/examples/reference-spec.json").read_text())
ROLE = "arn:aws:iam::123456789012:role/irsa-portal/irsa-portal-deployer"
OIDC = (
    "arn:aws:iam::123456789012:oidc-provider/"
    "oidc.eks.us-east-1.amazonaws.com/id/9A1B2C3D4E5F60718293A4B5C6D7E8F9"
)


@dataclass
class StandIn:
    name: str = "prod"
    region: str = "us-east-1"
    deployment_role_arn: str = ROLE
    deployment_external_id: str = ""


def rendered(role: DeploymentRole | None, *, sandbox: str | None = None) -> tuple[dict, dict]:
    spec = parse_workspace_spec(REFERENCE)
    files = render_workspace(
        spec, region=spec.cluster.region, deployment_role=role, sandbox_endpoint=sandbox
    )
    return json.loads(files[MAIN_FILE]), json.loads(files[TFVARS_FILE])


@pytest.mark.parametrize("sandbox", [None, "http://127.0.0.1:5055"])
def test_the_provider_assumes_the_role_with_values_only_in_the_tfvars(sandbox):
    role = DeploymentRole(role_arn=ROLE, session_name="irsa-portal-run-42", external_id="ext-1")
    main, tfvars = rendered(role, sandbox=sandbox)
    assert main["provider"]["aws"]["assume_role"] == {
        "role_arn": "${var.deployment_role_arn}",
        "session_name": "${var.deployment_session_name}",
        "external_id": "${var.deployment_external_id}",
    }
    assert ROLE not in json.dumps(main) and "ext-1" not in json.dumps(main)
    assert tfvars["deployment_role_arn"] == ROLE
    assert tfvars["deployment_session_name"] == "irsa-portal-run-42"
    assert tfvars["deployment_external_id"] == "ext-1"
    assert main["variable"]["deployment_external_id"] == {"type": "string", "default": None}
    if sandbox is None:  # the account guard stays: the role must be in the cluster's account
        assert main["provider"]["aws"]["allowed_account_ids"] == ["${var.account_id}"]


def test_without_a_role_nothing_is_assumed():
    main, tfvars = rendered(None)
    assert "assume_role" not in main["provider"]["aws"]
    assert not any(name.startswith("deployment_") for name in [*main["variable"], *tfvars])


def test_no_external_id_renders_null():
    _, tfvars = rendered(DeploymentRole(ROLE, "irsa-portal-run-1"))
    assert tfvars["deployment_external_id"] is None


def test_session_names_carry_the_purpose_and_the_run():
    assert session_name(purpose="run", run_id=42) == "irsa-portal-run-42"
    assert session_name(purpose="verify") == "irsa-portal-verify"
    with pytest.raises(ValueError, match="Unknown purpose"):
        session_name(purpose="anything")


def test_deployment_role_of_a_cluster():
    assert deployment_role(StandIn(deployment_role_arn=""), purpose="run", run_id=1) is None
    role = deployment_role(StandIn(deployment_external_id="x-9"), purpose="run", run_id=7)
    assert role == DeploymentRole(ROLE, "irsa-portal-run-7", "x-9")
    assert deployment_role(StandIn(), purpose="audit").external_id is None


def test_the_boundary_is_named_in_the_clusters_account():
    boundary = "arn:aws:iam::123456789012:policy/irsa/irsa-permissions-boundary"
    assert boundary_in_account(boundary, "210987654321") == (
        "arn:aws:iam::210987654321:policy/irsa/irsa-permissions-boundary"
    )
    assert boundary_in_account(boundary, "123456789012") == boundary
    assert boundary_in_account("", "210987654321") is None


def cluster(**fields) -> Cluster:
    base = {
        "name": "prod",
        "environment": "prod",
        "account_id": "123456789012",
        "region": "us-east-1",
        "oidc_provider_arn": OIDC,
    }
    return Cluster(**{**base, **fields})


def test_a_cluster_accepts_a_role_in_its_account():
    cluster(deployment_role_arn=ROLE, deployment_external_id="ext-1").full_clean(
        validate_unique=False, validate_constraints=False
    )


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"deployment_role_arn": "arn:aws:iam::123456789012:user/x"},
            "deployment_role_arn",
            "not an IAM role ARN",
        ),
        (
            {"deployment_role_arn": ROLE.replace("123456789012", "210987654321")},
            "deployment_role_arn",
            "account 210987654321",
        ),
        ({"deployment_external_id": "ext-1"}, "deployment_external_id", "needs a deployment role"),
        (
            {"deployment_role_arn": ROLE, "deployment_external_id": "a b"},
            "deployment_external_id",
            "2-1224",
        ),
    ],
)
def test_a_bad_role_or_external_id_says_what_to_change(fields, field, message):
    with pytest.raises(ValidationError) as raised:
        cluster(**fields).full_clean(validate_unique=False, validate_constraints=False)
    assert message in " ".join(raised.value.message_dict[field])
