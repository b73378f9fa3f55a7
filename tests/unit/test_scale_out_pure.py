"""Pure parts of issue 14: the S3 backend's endpoint options per Terraform version, and the
sandbox's throttling faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.terraform.backend import backend_config, s3_endpoint_env
from sandbox.faults import FaultError, Faults

SANDBOX = "http://127.0.0.1:5055"


def s3(version: str, endpoint: str = SANDBOX) -> dict[str, str]:
    return backend_config(
        kind="s3",
        state_key="irsa_ws_7",
        state_dir=Path("/tmp"),
        database={},
        s3_bucket="states",
        s3_lock_table="locks",
        region="us-east-1",
        endpoint_url=endpoint,
        terraform_version=version,
    ).options


def test_terraform_before_1_6_gets_the_flat_endpoint_arguments():
    options = s3("1.0.3")
    assert options["endpoint"] == options["dynamodb_endpoint"] == SANDBOX
    assert options["force_path_style"] == "true" and "use_path_style" not in options
    assert s3_endpoint_env(SANDBOX, "1.0.3") == {}


def test_newer_terraform_gets_path_style_and_endpoint_variables():
    options = s3("1.11.4")
    assert options["use_path_style"] == "true" and "endpoint" not in options
    assert s3_endpoint_env(SANDBOX, "1.11.4")["AWS_ENDPOINT_URL_DYNAMODB"] == SANDBOX
    assert options["dynamodb_table"] == "locks" and options["key"] == "irsa/irsa_ws_7.tfstate"


def test_real_aws_gets_no_endpoint_options():
    options = s3("1.11.4", endpoint="")
    assert set(options) == {"bucket", "key", "region", "dynamodb_table", "encrypt"}
    assert s3_endpoint_env("", "1.11.4") == {}


def test_faults_throttle_the_next_requests_of_one_service():
    faults = Faults()
    faults.configure({"throttle": {"service": "iam", "count": 2}})
    assert faults.take("dynamodb") is None
    first = faults.take("iam")
    assert (first.code, first.message, first.status) == ("Throttling", "Rate exceeded", 400)
    assert faults.take("iam") is not None and faults.take("iam") is None
    assert faults.pending() == {"iam": 0}


@pytest.mark.parametrize(
    "document",
    [None, {"throttle": {"service": "ec2", "count": 1}}, {"throttle": {"service": "iam"}}],
)
def test_a_bad_fault_request_says_what_to_send(document):
    with pytest.raises(FaultError):
        Faults().configure(document)
