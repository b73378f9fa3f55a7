"""Which resource changes of a plan delete data: tables and buckets destroyed or replaced, in any
plan (a removed resource, a changed key), not only a decommission's destroy plan."""

from provisioning.services.preflight import data_deletions


def change(kind: str, address: str, *actions: str) -> dict:
    return {"type": kind, "address": address, "change": {"actions": list(actions)}}


def test_deleted_and_replaced_tables_and_buckets_are_the_data_deletions():
    show = {
        "resource_changes": [
            change("aws_dynamodb_table", "t_removed", "delete"),
            change("aws_dynamodb_table", "t_replaced", "delete", "create"),
            change("aws_s3_bucket", "b_replaced", "create", "delete"),
            change("aws_dynamodb_table", "t_updated", "update"),
            change("aws_s3_bucket", "b_new", "create"),
            change("aws_iam_role", "role_gone", "delete"),  # access, not data
            change("aws_s3_bucket_versioning", "v_gone", "delete"),
        ]
    }
    assert [c["address"] for c in data_deletions(show)] == [
        "t_removed",
        "t_replaced",
        "b_replaced",
    ]


def test_a_plan_without_resource_changes_deletes_nothing():
    assert data_deletions({}) == []
