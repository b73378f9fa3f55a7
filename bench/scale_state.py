"""Issue 14: a workspace's init + plan with 1,000 applied workspaces against 1, the others
populated cheaply and honestly.

`bench.scale` applies every extra workspace with Terraform (tens of CPU seconds each), which caps
it at a few hundred on two cores. Here only the target is applied with Terraform; every other
workspace gets what an apply would have left, made directly:

1. Its AWS objects, with boto3 in the sandbox, as the module makes them for the small spec (one
   read DynamoDB table): the KMS key (rotation on, tags), its key policy and alias; the table
   (SSE under that key, point-in-time recovery, tags); the identity policy; the role under
   /irsa/ with the trust policy, the permissions boundary and tags; the attachment. Every name,
   tag and policy document is taken from the rewritten state below, so objects and state agree.
2. Its state: the target's state (the template) rewritten: the target's microservice name
   replaced by the new one everywhere (names, ARNs, tags, policy documents, outputs), the KMS
   key id replaced by the new key's, the role's unique id and create date and the policy's id
   set to what AWS returned; a new lineage, serial 1. Written into a schema of its own in the
   pg backend with the backend's own layout (checked against the schema Terraform made for the
   target) as the row `default`, as Terraform writes it.
3. Validation: `--validate` populated workspaces are planned with Terraform (init + plan); each
   must report no changes, or the benchmark stops (a populated workspace that plans changes
   means its state or its objects are wrong, and the measurement would be worthless).
4. The target's init + plan (fresh working directory each time), median of `--repeat`, with
   only the target applied and again with all `--count` applied; the ratio after / before.

    .venv/bin/python -m bench.scale_state [--count 1000] [--repeat 5] [--threads 4] [--validate 3]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
import psycopg
from psycopg import sql

from bench.common import (
    SMALL_RESOURCES,
    Stack,
    load_average,
    log,
    machine_lines,
    median,
    table,
    timed,
    unique,
)
from bench.scale import TARGET_RATIO, apply_workspace, plan_workspace
from provisioning.terraform.backend import PG_BACKEND_SEQUENCE_DDL


def timed_plan(stack: Stack, name: str) -> dict[str, float]:
    """init + plan of one workspace (no changes expected): wall seconds, and the CPU seconds of
    Terraform (the launcher's reaped children) and of this process. Wall time swings with
    whatever else runs on the machine; CPU time is the robust figure on a busy one."""
    before = os.times()
    result = plan_workspace(stack, name)
    after = os.times()
    result["cpu"] = sum(
        getattr(after, f) - getattr(before, f)
        for f in ("user", "system", "children_user", "children_system")
    )
    return result


# The pg backend's layout, as Terraform creates it at `init` (internal/backend/remote-state/pg);
# `schema_layout` compares the result with a schema Terraform made, so a drift in Terraform's
# layout stops the benchmark instead of skewing it.
BACKEND_DDL = (
    PG_BACKEND_SEQUENCE_DDL,
    "CREATE SCHEMA IF NOT EXISTS {schema}",
    "CREATE TABLE IF NOT EXISTS {schema}.states ("
    "id bigint NOT NULL DEFAULT nextval('public.global_states_id_seq') PRIMARY KEY, "
    "name text UNIQUE, data text)",
    "CREATE UNIQUE INDEX IF NOT EXISTS states_by_name ON {schema}.states (name)",
)


def _conn_str() -> str:
    from django.db import connection

    from provisioning.terraform.backend import postgres_conn_str

    return postgres_conn_str(connection.settings_dict)


def read_state(schema: str) -> str:
    query = sql.SQL("SELECT data FROM {}.states WHERE name = 'default'").format(
        sql.Identifier(schema)
    )
    with psycopg.connect(_conn_str()) as conn:
        (data,) = conn.execute(query).fetchone()
    return data


def write_state(schema: str, data: str) -> None:
    """The schema laid out as the backend lays it out, the state as the backend writes it."""
    with psycopg.connect(_conn_str(), autocommit=True) as conn:
        for statement in BACKEND_DDL:
            conn.execute(sql.SQL(statement).format(schema=sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.states (name, data) VALUES ('default', %s) "
                "ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data"
            ).format(sql.Identifier(schema)),
            [data],
        )


def schema_layout(schema: str) -> dict[str, Any]:
    """Columns, constraints and indexes of a state schema, with its name taken out."""
    with psycopg.connect(_conn_str()) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, column_default, is_nullable "
            "FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2",
            [schema],
        ).fetchall()
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %s ORDER BY 1",
            [schema],
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1",
            [schema],
        ).fetchall()
    text = json.dumps([columns, constraints, indexes], default=str)
    return json.loads(text.replace(f'"{schema}"', "SCHEMA").replace(schema, "SCHEMA"))


# --- one populated workspace -----------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """The target's state and the values in it that belong to the target alone."""

    text: str
    name: str
    key_id: str

    @classmethod
    def of(cls, text: str, name: str) -> Template:
        key = by_type(json.loads(text))["aws_kms_key"]
        return cls(text=text, name=name, key_id=key["key_id"])


def by_type(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The attributes of each resource by type (the small spec has one resource of each)."""
    found: dict[str, dict[str, Any]] = {}
    for resource in state["resources"]:
        if resource["type"] in found or len(resource["instances"]) != 1:
            raise ValueError(f"the template has more than one {resource['type']}")
        found[resource["type"]] = resource["instances"][0]["attributes"]
    return found


def _tags(attributes: dict[str, Any], key: str = "Key", value: str = "Value") -> list[dict]:
    return [{key: k, value: v} for k, v in sorted(attributes["tags"].items())]


class Populator:
    def __init__(self, template: Template) -> None:
        self.template = template
        self._local = threading.local()

    def _client(self, service: str) -> Any:
        clients = self._local.__dict__.setdefault("clients", {})
        if service not in clients:  # boto3's session set-up is not thread-safe: one per thread
            clients[service] = boto3.session.Session().client(service)
        return clients[service]

    def populate(self, name: str) -> float:
        """AWS objects and state for one more workspace; returns the seconds it took."""
        started = time.perf_counter()
        text = self.template.text.replace(self.template.name, name)
        key_id = self._kms_key(by_type(json.loads(text))["aws_kms_key"])
        state = json.loads(text.replace(self.template.key_id, key_id))
        found = by_type(state)
        kms = self._client("kms")
        kms.put_key_policy(
            KeyId=key_id, PolicyName="default", Policy=found["aws_kms_key_policy"]["policy"]
        )
        kms.create_alias(AliasName=found["aws_kms_alias"]["name"], TargetKeyId=key_id)
        self._table(found["aws_dynamodb_table"])
        self._role_and_policy(found)
        state["lineage"], state["serial"] = str(uuid.uuid4()), 1
        ending = "\n" if self.template.text.endswith("\n") else ""
        write_state(f"bench_{name}", json.dumps(state, indent=2) + ending)
        return time.perf_counter() - started

    def _kms_key(self, key: dict[str, Any]) -> str:
        kms = self._client("kms")
        created = kms.create_key(
            Description=key["description"],
            KeyUsage=key["key_usage"],
            KeySpec=key["customer_master_key_spec"],
            Tags=_tags(key, "TagKey", "TagValue"),
        )["KeyMetadata"]
        if key["enable_key_rotation"]:
            kms.enable_key_rotation(KeyId=created["KeyId"])
        return created["KeyId"]

    def _table(self, table_: dict[str, Any]) -> None:
        dynamodb = self._client("dynamodb")
        keys = [{"AttributeName": table_["hash_key"], "KeyType": "HASH"}]
        if table_["range_key"]:
            keys.append({"AttributeName": table_["range_key"], "KeyType": "RANGE"})
        (sse,) = table_["server_side_encryption"]
        dynamodb.create_table(
            TableName=table_["name"],
            AttributeDefinitions=[
                {"AttributeName": a["name"], "AttributeType": a["type"]}
                for a in table_["attribute"]
            ],
            KeySchema=keys,
            BillingMode=table_["billing_mode"],
            SSESpecification={
                "Enabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": sse["kms_key_arn"],
            },
            TableClass=table_["table_class"],
            DeletionProtectionEnabled=table_["deletion_protection_enabled"],
            Tags=_tags(table_),
        )
        if table_["point_in_time_recovery"][0]["enabled"]:
            dynamodb.update_continuous_backups(
                TableName=table_["name"],
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )

    def _role_and_policy(self, found: dict[str, dict[str, Any]]) -> None:
        iam = self._client("iam")
        policy_, role_ = found["aws_iam_policy"], found["aws_iam_role"]
        policy = iam.create_policy(
            PolicyName=policy_["name"],
            Path=policy_["path"],
            PolicyDocument=policy_["policy"],
            Description=policy_["description"],
            Tags=_tags(policy_),
        )["Policy"]
        role = iam.create_role(
            RoleName=role_["name"],
            Path=role_["path"],
            AssumeRolePolicyDocument=role_["assume_role_policy"],
            PermissionsBoundary=role_["permissions_boundary"],
            MaxSessionDuration=role_["max_session_duration"],
            Tags=_tags(role_),
        )["Role"]
        iam.attach_role_policy(RoleName=role_["name"], PolicyArn=policy["Arn"])
        # The ids AWS generated for these objects, where the template has the target's.
        policy_["policy_id"] = policy["PolicyId"]
        role_["unique_id"] = role["RoleId"]
        role_["create_date"] = role["CreateDate"].strftime("%Y-%m-%dT%H:%M:%SZ")


def populate_many(populator: Populator, names: list[str], *, threads: int) -> list[float]:
    seconds: list[float] = []
    with ThreadPoolExecutor(threads) as pool:
        for took in pool.map(populator.populate, names):
            seconds.append(took)
            if len(seconds) % 100 == 0:
                log(f"{len(seconds)} workspaces populated (load {load_average()})")
    return seconds


def validate(stack: Stack, target: str, names: list[str]) -> list[float]:
    """Plan populated workspaces with Terraform: each must have nothing to change."""
    reference = schema_layout(f"bench_{target}")
    took = []
    for name in names:
        layout = schema_layout(f"bench_{name}")
        if layout != reference:
            raise SystemExit(f"bench_{name} is not laid out as Terraform lays out a state schema")
        try:
            took.append(plan_workspace(stack, name)["total"])  # asserts: no changes
        except AssertionError as exc:
            raise SystemExit(f"populated workspace {name} plans changes: {exc}") from None
        log(f"validated {name}: init + plan {took[-1]:.1f} s, no changes")
    return took


def storage(stack: Stack, target: str) -> dict[str, int]:
    """What one small workspace stores: its state (bytes, and on disk in its schema: table,
    TOAST and index), and what one plan or drift run adds to its Run row (plan file, log)."""
    from provisioning.terraform.context import open_workspace

    schema = f"bench_{target}"
    with psycopg.connect(_conn_str()) as conn:
        (on_disk,) = conn.execute(
            "SELECT pg_total_relation_size(%s::regclass)", [f'"{schema}".states']
        ).fetchone()
    log_bytes = [0]

    def count(line: str) -> None:
        log_bytes[0] += len(line.encode()) + 1

    runner = open_workspace(spec=stack.spec(target, SMALL_RESOURCES), state_key=schema, sink=count)
    try:
        runner.init()
        plan = runner.plan()
    finally:
        runner.cleanup()
    return {
        "state bytes": len(read_state(schema).encode()),
        "state schema on disk bytes": on_disk,
        "plan file bytes": len(plan.plan_file),
        "plan log bytes": log_bytes[0],
        "plan summary bytes": len(json.dumps(plan.summary).encode()),
    }


# --- the measurement ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="applied workspaces in all")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=4, help="population threads")
    parser.add_argument("--validate", type=int, default=3, help="populated workspaces planned")
    args = parser.parse_args()
    started = time.monotonic()
    with Stack("scale-state") as stack:
        from provisioning.terraform.context import toolchain

        print("\n".join(machine_lines([toolchain().binary])))
        target = unique("target")
        resources = apply_workspace(stack, target)
        log(f"target {target} applied with Terraform ({resources} resources)")
        load_before = load_average()
        before = [timed_plan(stack, target) for _ in range(args.repeat)]
        log(f"before: {[(round(b['total'], 2), round(b['cpu'], 2)) for b in before]}")

        populator = Populator(Template.of(read_state(f"bench_{target}"), target))
        others = [unique("sc") for _ in range(args.count - 1)]
        wall, seconds = timed(lambda: populate_many(populator, others, threads=args.threads))
        log(f"{len(others)} workspaces populated in {wall:.0f} s")
        checked = validate(
            stack, target, others[:: max(1, len(others) // args.validate)][: args.validate]
        )

        load_after = load_average()
        after = [timed_plan(stack, target) for _ in range(args.repeat)]
        log(f"after: {[(round(a['total'], 2), round(a['cpu'], 2)) for a in after]}")
        report(args, before, after, load_before, load_after, resources)
        print(
            f"\nPopulation: {len(others)} workspaces ({resources} resources each) in "
            f"{wall:.0f} s wall on {args.threads} threads, {wall / max(len(others), 1):.3f} s "
            f"per workspace (median {median(seconds) if seconds else 0:.3f} s of one thread's "
            f"time each); validated by planning {len(checked)} of them with Terraform, all "
            f"without changes (init + plan {', '.join(f'{t:.1f}' for t in checked)} s)."
        )
        sizes = storage(stack, target)
        print(
            "\nStorage of one small workspace: " + ", ".join(f"{k} {v}" for k, v in sizes.items())
        )
        print(f"- wall time: {(time.monotonic() - started) / 60:.1f} min")


def report(
    args: argparse.Namespace,
    before: list[dict[str, float]],
    after: list[dict[str, float]],
    load_before: str,
    load_after: str,
    resources: int,
) -> None:
    def row(label: str, runs: list[dict[str, float]], load: str) -> list:
        return [
            label,
            len(runs),
            median(r["init"] for r in runs),
            median(r["plan"] for r in runs),
            median(r["total"] for r in runs),
            median(r["cpu"] for r in runs),
            load,
        ]

    ratio = median(a["total"] for a in after) / median(b["total"] for b in before)
    cpu_ratio = median(a["cpu"] for a in after) / median(b["cpu"] for b in before)
    header = [f"target workspace ({resources} resources)", "runs", "init s", "plan s"]
    print(
        table(
            [*header, "init+plan s", "CPU s", "load before"],
            [
                row("1 workspace applied", before, load_before),
                row(f"{args.count} workspaces applied", after, load_after),
            ],
        )
    )
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(
        f"\nafter / before (init+plan medians): {ratio:.2f} (target <= {TARGET_RATIO}: {verdict})"
    )
    print(f"after / before (CPU s medians): {cpu_ratio:.2f}")


if __name__ == "__main__":
    main()
