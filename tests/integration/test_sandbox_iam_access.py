"""Requests made with an assumed role's credentials are authorized like AWS: DynamoDB, S3, KMS
(directly and through S3's SSE-KMS), IAM and STS, on their real resource ARNs. The admin
credentials are never enforced.

`a` is read_write on its table and bucket, `b` read only; both are made with the portal's own
policy builders (identity policy, trust policy, key policy) and the demo permissions boundary.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from provisioning.iam import naming
from sandbox.demo import DemoAws
from sandbox.oidc import mint_token
from sandbox.server import SandboxServer
from tests.sandbox_fixtures import (
    INDEX,
    NAMESPACE,
    SandboxService,
    admin_client,
    assume_web_identity,
)

pytestmark = pytest.mark.integration
Services = dict[str, SandboxService]
Pod = Callable[[str, str], Any]
KEY = {"id": {"S": "1"}}


def denied(call: Callable[[], object]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"].get("Message", ""),
    )


# --- DynamoDB ---------------------------------------------------------------------------------


def test_own_table_is_refused_without_its_key_through_dynamodb(
    sandbox: SandboxServer, sandbox_services: Services, sandbox_pod: Pod
) -> None:
    """A deny of kms:Decrypt through DynamoDB, attached by hand, closes the own table: every
    item operation on a table under a customer managed key uses the key as the caller."""
    iam, a = admin_client(sandbox, "iam"), sandbox_services["a"]
    role = naming.role_name(a.spec)
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "kms:Decrypt",
                "Resource": a.key_arn,
                "Condition": {
                    "StringEquals": {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}
                },
            }
        ],
    }
    dynamodb = sandbox_pod("a", "dynamodb")
    iam.put_role_policy(RoleName=role, PolicyName="no-key", PolicyDocument=json.dumps(deny))
    try:
        code, _, message = denied(lambda: dynamodb.get_item(TableName=a.table, Key=KEY))
        described = dynamodb.describe_table(TableName=a.table)["Table"]  # no item: no key
    finally:
        iam.delete_role_policy(RoleName=role, PolicyName="no-key")

    assert code == "AccessDeniedException" and f"kms:Decrypt on resource: {a.key_arn}" in message
    assert described["SSEDescription"]["KMSMasterKeyArn"] == a.key_arn
    assert dynamodb.get_item(TableName=a.table, Key=KEY)["Item"]["id"] == {"S": "1"}


def test_own_table_is_readable_and_writable_with_read_write(
    sandbox_services: Services, sandbox_pod: Pod
) -> None:
    dynamodb, table = sandbox_pod("a", "dynamodb"), sandbox_services["a"].table

    dynamodb.put_item(TableName=table, Item={"id": {"S": "2"}, "status": {"S": "paid"}})
    item = dynamodb.get_item(TableName=table, Key={"id": {"S": "2"}})["Item"]
    by_status = dynamodb.query(
        TableName=table,
        IndexName=INDEX,
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "new"}},
    )["Items"]
    batch = dynamodb.batch_get_item(RequestItems={table: {"Keys": [KEY]}})["Responses"]

    assert item["status"] == {"S": "paid"}
    assert [i["id"] for i in by_status] == [{"S": "1"}]
    assert len(batch[table]) == 1


def test_neighbours_table_is_denied_with_dynamodbs_error(
    sandbox_services: Services, sandbox_pod: Pod
) -> None:
    dynamodb = sandbox_pod("a", "dynamodb")
    a, b = sandbox_services["a"], sandbox_services["b"]
    b_arn = f"arn:aws:dynamodb:us-east-1:{b.spec.cluster.account_id}:table/{b.table}"

    code, status, message = denied(lambda: dynamodb.get_item(TableName=b.table, Key=KEY))
    batch_code, _, batch_message = denied(
        lambda: dynamodb.batch_get_item(
            RequestItems={a.table: {"Keys": [KEY]}, b.table: {"Keys": [KEY]}}
        )
    )

    assert (code, status) == ("AccessDeniedException", 400)
    assert message.startswith(f"User: arn:aws:sts::{b.spec.cluster.account_id}:assumed-role/")
    assert f"not authorized to perform: dynamodb:GetItem on resource: {b_arn} " in message
    assert batch_code == "AccessDeniedException"
    assert f"dynamodb:BatchGetItem on resource: {b_arn}" in batch_message


def test_read_access_cannot_write_its_own_table(
    sandbox_services: Services, sandbox_pod: Pod
) -> None:
    dynamodb, table = sandbox_pod("b", "dynamodb"), sandbox_services["b"].table

    assert dynamodb.get_item(TableName=table, Key=KEY)["Item"]["id"] == {"S": "1"}
    code, _, message = denied(lambda: dynamodb.put_item(TableName=table, Item={"id": {"S": "9"}}))
    assert code == "AccessDeniedException"
    assert "dynamodb:PutItem" in message


def test_delete_table_and_listing_tables_are_denied(
    sandbox_services: Services, sandbox_pod: Pod
) -> None:
    dynamodb, table = sandbox_pod("a", "dynamodb"), sandbox_services["a"].table

    assert denied(lambda: dynamodb.delete_table(TableName=table))[0] == "AccessDeniedException"
    code, _, message = denied(lambda: dynamodb.list_tables())
    assert code == "AccessDeniedException"
    assert "dynamodb:ListTables on resource: *" in message


# --- S3 and KMS through S3 --------------------------------------------------------------------


def test_own_bucket_objects_are_written_and_read_with_the_own_key_through_s3(
    sandbox_services: Services, sandbox_pod: Pod
) -> None:
    s3, a = sandbox_pod("a", "s3"), sandbox_services["a"]

    s3.put_object(Bucket=a.bucket, Key="report.csv", Body=b"id,total\n1,10\n")
    head = s3.head_object(Bucket=a.bucket, Key="report.csv")
    body = s3.get_object(Bucket=a.bucket, Key="report.csv")["Body"].read()
    listed = s3.list_objects_v2(Bucket=a.bucket)["Contents"]

    assert body == b"id,total\n1,10\n"
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == a.key_arn
    assert {"seed.txt", "report.csv"} <= {o["Key"] for o in listed}


def test_neighbours_bucket_is_denied_with_s3s_error(
    sandbox_services: Services, sandbox_pod: Pod
) -> None:
    s3, b = sandbox_pod("a", "s3"), sandbox_services["b"]

    code, status, message = denied(lambda: s3.get_object(Bucket=b.bucket, Key="seed.txt"))

    assert (code, status) == ("AccessDenied", 403)
    assert f"s3:GetObject on resource: arn:aws:s3:::{b.bucket}/seed.txt" in message
    assert denied(lambda: s3.list_objects_v2(Bucket=b.bucket))[0] == "AccessDenied"
    assert denied(lambda: s3.put_object(Bucket=b.bucket, Key="x", Body=b"x"))[0] == "AccessDenied"


def test_read_access_reads_objects_through_the_key_but_cannot_write(
    sandbox_services: Services, sandbox_pod: Pod
) -> None:
    s3, b = sandbox_pod("b", "s3"), sandbox_services["b"]

    assert s3.get_object(Bucket=b.bucket, Key="seed.txt")["Body"].read() == b"seed"
    code, _, message = denied(lambda: s3.put_object(Bucket=b.bucket, Key="x", Body=b"x"))
    assert code == "AccessDenied"
    assert "s3:PutObject" in message


def test_writing_with_a_neighbours_key_is_denied_at_kms(
    sandbox_services: Services, sandbox_pod: Pod
) -> None:
    s3, a, b = sandbox_pod("a", "s3"), sandbox_services["a"], sandbox_services["b"]

    code, status, message = denied(
        lambda: s3.put_object(
            Bucket=a.bucket,
            Key="wrong-key.txt",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=b.key_arn,
        )
    )

    assert (code, status) == ("AccessDenied", 403)
    assert f"kms:GenerateDataKey on resource: {b.key_arn}" in message


def test_copying_a_neighbours_object_is_denied_and_an_own_copy_allowed(
    sandbox_services: Services, sandbox_pod: Pod
) -> None:
    s3, a, b = sandbox_pod("a", "s3"), sandbox_services["a"], sandbox_services["b"]

    s3.copy_object(Bucket=a.bucket, Key="seed-copy.txt", CopySource=f"{a.bucket}/seed.txt")
    code, _, message = denied(
        lambda: s3.copy_object(Bucket=a.bucket, Key="stolen.txt", CopySource=f"{b.bucket}/seed.txt")
    )

    assert s3.get_object(Bucket=a.bucket, Key="seed-copy.txt")["Body"].read() == b"seed"
    assert code == "AccessDenied"
    assert f"s3:GetObject on resource: arn:aws:s3:::{b.bucket}/seed.txt" in message


def test_sensitive_bucket_actions_are_denied(sandbox_services: Services, sandbox_pod: Pod) -> None:
    s3, a = sandbox_pod("a", "s3"), sandbox_services["a"]
    policy = {"Version": "2012-10-17", "Statement": []}

    code, _, message = denied(
        lambda: s3.put_bucket_policy(Bucket=a.bucket, Policy=json.dumps(policy))
    )
    assert code == "AccessDenied"
    assert "s3:PutBucketPolicy" in message
    assert denied(lambda: s3.delete_bucket(Bucket=a.bucket))[0] == "AccessDenied"
    assert denied(lambda: s3.list_buckets())[0] == "AccessDenied"


# --- KMS directly ------------------------------------------------------------------------------


def test_own_key_is_denied_when_called_directly_not_through_a_service(
    sandbox: SandboxServer, sandbox_services: Services, sandbox_pod: Pod
) -> None:
    kms, a = sandbox_pod("a", "kms"), sandbox_services["a"]
    blob = admin_client(sandbox, "kms").encrypt(KeyId=a.key_arn, Plaintext=b"secret")[
        "CiphertextBlob"
    ]

    code, status, message = denied(lambda: kms.decrypt(CiphertextBlob=blob))

    assert (code, status) == ("AccessDeniedException", 400)
    assert f"kms:Decrypt on resource: {a.key_arn}" in message
    assert denied(lambda: kms.generate_data_key(KeyId=a.key_arn, KeySpec="AES_256"))[0] == (
        "AccessDeniedException"
    )


def test_neighbours_key_and_key_administration_are_denied(
    sandbox_services: Services, sandbox_pod: Pod
) -> None:
    kms, a, b = sandbox_pod("a", "kms"), sandbox_services["a"], sandbox_services["b"]
    alias = f"alias/irsa/{naming.workspace_slug(b.spec)}-probe"

    code, _, message = denied(lambda: kms.encrypt(KeyId=b.key_arn, Plaintext=b"x"))
    assert code == "AccessDeniedException"
    assert b.key_arn in message
    assert denied(lambda: kms.schedule_key_deletion(KeyId=a.key_arn, PendingWindowInDays=7))[0] == (
        "AccessDeniedException"
    )
    assert denied(lambda: kms.create_alias(AliasName=alias, TargetKeyId=a.key_arn))[0] == (
        "AccessDeniedException"
    )


# --- IAM and STS -------------------------------------------------------------------------------


def test_iam_actions_are_denied_with_iams_error(sandbox_pod: Pod) -> None:
    iam = sandbox_pod("a", "iam")
    trust = {"Version": "2012-10-17", "Statement": []}

    code, status, message = denied(
        lambda: iam.create_role(RoleName="escalate", AssumeRolePolicyDocument=json.dumps(trust))
    )

    assert (code, status) == ("AccessDenied", 403)
    assert "iam:CreateRole on resource: arn:aws:iam::123456789012:role/escalate" in message
    assert denied(lambda: iam.list_roles())[0] == "AccessDenied"


def test_assuming_another_role_with_the_pods_credentials_is_denied(
    sandbox_services: Services, sandbox_pod: Pod
) -> None:
    sts = sandbox_pod("a", "sts")
    b_role = sandbox_services["b"].role_arn

    code, _, message = denied(lambda: sts.assume_role(RoleArn=b_role, RoleSessionName="hop"))

    assert code == "AccessDenied"
    assert f"sts:AssumeRole on resource: {b_role}" in message


# --- the negative control and the admin --------------------------------------------------------


def test_an_over_broad_policy_attached_by_hand_opens_the_neighbours_table(
    sandbox: SandboxServer, sandbox_services: Services, sandbox_pod: Pod
) -> None:
    """The enforcement follows the role's live policies, so a proof cannot pass vacuously.

    What the broad policy opens is B's table itself (its description, no key needed); B's items
    stay closed by B's key, whose key policy names only B's role, so even `kms:Decrypt` on `*`
    in A's identity policy does not reach them (DynamoDB decrypts the table key as the caller)."""
    iam, a, b = admin_client(sandbox, "iam"), sandbox_services["a"], sandbox_services["b"]
    role = naming.role_name(a.spec)
    broad = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
        ],
    }
    dynamodb = sandbox_pod("a", "dynamodb")
    closed = denied(lambda: dynamodb.describe_table(TableName=b.table))[0]
    iam.put_role_policy(RoleName=role, PolicyName="by-hand", PolicyDocument=json.dumps(broad))
    try:
        described = dynamodb.describe_table(TableName=b.table)["Table"]
        code, _, message = denied(lambda: dynamodb.get_item(TableName=b.table, Key=KEY))
        # The permissions boundary still caps what the broad policy grants.
        boundary_code = denied(lambda: dynamodb.delete_table(TableName=b.table))[0]
    finally:
        iam.delete_role_policy(RoleName=role, PolicyName="by-hand")

    assert closed == "AccessDeniedException"
    assert described["TableName"] == b.table
    assert code == "AccessDeniedException"
    assert f"kms:Decrypt on resource: {b.key_arn}" in message
    assert boundary_code == "AccessDeniedException"
    assert denied(lambda: dynamodb.describe_table(TableName=b.table))[0] == (
        "AccessDeniedException"
    )


def test_admin_credentials_are_not_enforced(
    sandbox: SandboxServer, sandbox_services: Services
) -> None:
    b = sandbox_services["b"]
    dynamodb, kms = admin_client(sandbox, "dynamodb"), admin_client(sandbox, "kms")
    scratch = f"scratch-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=scratch,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    assert dynamodb.get_item(TableName=b.table, Key=KEY)["Item"]["id"] == {"S": "1"}
    blob = kms.encrypt(KeyId=b.key_arn, Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    dynamodb.delete_table(TableName=scratch)
    assert scratch not in dynamodb.list_tables()["TableNames"]


def test_presigned_urls_are_authorized_like_signed_requests(
    sandbox_services: Services, sandbox_pod: Pod
) -> None:
    s3, a, b = sandbox_pod("a", "s3"), sandbox_services["a"], sandbox_services["b"]
    own = s3.generate_presigned_url("get_object", Params={"Bucket": a.bucket, "Key": "seed.txt"})
    other = s3.generate_presigned_url("get_object", Params={"Bucket": b.bucket, "Key": "seed.txt"})

    assert _http_get(own) == (200, b"seed")
    status, body = _http_get(other)
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in body


def test_session_keys_without_their_session_token_are_refused(
    sandbox: SandboxServer, demo_aws: DemoAws, sandbox_services: Services
) -> None:
    a = sandbox_services["a"]
    token = mint_token(
        sandbox.endpoint_url,
        issuer=demo_aws.oidc_issuer,
        namespace=NAMESPACE,
        service_account=a.service_account,
    )
    creds = assume_web_identity(sandbox, a.role_arn, token)
    stolen = boto3.client(
        "dynamodb",
        endpoint_url=sandbox.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
    )

    code, status, _ = denied(lambda: stolen.get_item(TableName=a.table, Key=KEY))

    assert (code, status) == ("UnrecognizedClientException", 400)


def _http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback URL
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
