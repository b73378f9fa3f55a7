"""``irsa`` commands: apply, status, logs, confirm-data-loss, approve, reject, whoami. Exit
status: 0 success, 1 the portal said no (a failed plan, a high finding, a refused request), 2 bad
usage or file."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from irsa_cli import output
from irsa_cli.client import ApiError, Client

WAITING_STATUSES = ("submitted",)
FAILED_STATUSES = ("failed", "rejected", "cancelled")


class UsageError(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = output.Printer(as_json=args.json, stream=sys.stdout)
    try:
        client = _client()
        return int(args.command(client, args, out) or 0)
    except UsageError as exc:
        print(f"irsa: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        if args.json and exc.body is not None:
            out.json({"status": exc.status, "error": exc.body})
        print(f"irsa: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _client() -> Client:
    url, token = os.environ.get("IRSA_URL"), os.environ.get("IRSA_TOKEN")
    if not url or not token:
        raise UsageError("set IRSA_URL (the portal's address) and IRSA_TOKEN (your API token).")
    return Client(url, token)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="irsa", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the API's JSON answers")
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    apply = commands.add_parser("apply", help="declare a microservice's spec (JSON or YAML)")
    apply.add_argument("spec", type=Path)
    apply.add_argument("--name", help="the microservice (default: the file's `microservice`)")
    apply.add_argument("--wait", action="store_true", help="wait for the plans and show them")
    apply.add_argument("--timeout", type=float, default=1800, help="seconds to wait (1800)")
    apply.set_defaults(command=cmd_apply)

    status = commands.add_parser("status", help="a microservice's workspaces and last request")
    status.add_argument("name")
    status.set_defaults(command=cmd_status)

    logs = commands.add_parser("logs", help="a run's log")
    logs.add_argument("run", type=int)
    logs.add_argument("--follow", "-f", action="store_true", help="until the run ends")
    logs.set_defaults(command=cmd_logs)

    confirm = commands.add_parser(
        "confirm-data-loss",
        help="confirm that a planned change request may delete the tables and buckets it lists "
        "(owning team; reviewers cannot approve before)",
    )
    confirm.add_argument("change_request", type=int)
    confirm.add_argument("--name", required=True, help="the microservice's name, typed to confirm")
    confirm.set_defaults(command=cmd_confirm_data_loss)

    for verb in ("approve", "reject"):
        decide = commands.add_parser(verb, help=f"{verb} a planned change request (reviewers)")
        decide.add_argument("change_request", type=int)
        decide.add_argument("--comment", "-m", default="", required=verb == "reject")
        decide.set_defaults(command=cmd_approve if verb == "approve" else cmd_reject)

    whoami = commands.add_parser("whoami", help="the token's user, teams and role")
    whoami.set_defaults(command=cmd_whoami)
    return parser


# --- Commands ----------------------------------------------------------------------------------


def cmd_whoami(client: Client, args: argparse.Namespace, out: output.Printer) -> int:
    me = client.get("me/")
    out.emit(me, output.whoami)
    return 0


def cmd_status(client: Client, args: argparse.Namespace, out: output.Printer) -> int:
    service = client.get(f"microservices/{args.name}/")
    requests = client.get("change-requests/", microservice=args.name, page_size=1)
    latest = requests["results"][0] if requests["results"] else None
    out.emit({"microservice": service, "latest_change_request": latest}, output.status)
    return 0


def cmd_logs(client: Client, args: argparse.Namespace, out: output.Printer) -> int:
    offset = 0
    while True:
        wait = 20 if args.follow else 0
        chunk = client.get(f"runs/{args.run}/log/", offset=offset, wait=wait)
        out.log_chunk(chunk)
        offset = chunk["next_offset"]
        if not args.follow or chunk["finished"]:
            return 0 if chunk["status"] in ("succeeded", "queued", "running") else 1


def cmd_apply(client: Client, args: argparse.Namespace, out: output.Printer) -> int:
    data, content_type, spec = _read_spec(args.spec)
    name = args.name or spec.get("microservice")
    if not name:
        raise UsageError(f"{args.spec} names no `microservice`; pass --name.")
    change = client.put(f"microservices/{name}/spec/", data, content_type)
    out.line(output.change_headline(change))
    if args.wait:
        change = _wait_for_plans(client, change, args.timeout, out)
    out.emit(change, output.review)
    return _apply_exit_code(change, waited=args.wait)


def _read_spec(path: Path) -> tuple[bytes, str, dict[str, Any]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}.") from None
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:  # PyYAML is optional: without it only JSON specs are read here
            return data, "application/yaml", {}
        try:
            spec = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise UsageError(f"{path} is not valid YAML: {exc}") from None
        return data, "application/yaml", spec if isinstance(spec, dict) else {}
    try:
        spec = json.loads(data)
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}.") from None
    return data, "application/json", spec if isinstance(spec, dict) else {}


def _wait_for_plans(
    client: Client, change: dict[str, Any], timeout: float, out: output.Printer
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown = change["status"]
    while change["status"] in WAITING_STATUSES:
        if time.monotonic() > deadline:
            raise ApiError(None, None, f"still {change['status']} after {timeout:.0f} s.")
        time.sleep(2)
        change = client.get(f"change-requests/{change['id']}/")
        if change["status"] != shown:
            shown = change["status"]
            out.line(f"change request #{change['id']} is now {shown}")
    return change


def _apply_exit_code(change: dict[str, Any], *, waited: bool) -> int:
    if change["status"] in FAILED_STATUSES:
        return 1
    plans = [r for r in change.get("runs", []) if r["kind"] == "plan"]
    if waited and change["status"] == "draft" and any(r["status"] != "succeeded" for r in plans):
        return 1  # a plan failed: the request went back to draft
    summary = (change.get("review") or {}).get("summary") or {}
    return 1 if summary.get("blocking") else 0


def cmd_approve(client: Client, args: argparse.Namespace, out: output.Printer) -> int:
    change = client.get(f"change-requests/{args.change_request}/")
    hashes = {str(w["run"]): w["plan_sha256"] for w in change["review"]["workspaces"]}
    body = {"plan_hashes": hashes, "comment": args.comment}
    change = client.post(f"change-requests/{args.change_request}/approve/", body)
    out.emit(change, output.change_headline)
    return 0


def cmd_confirm_data_loss(client: Client, args: argparse.Namespace, out: output.Printer) -> int:
    body = {"confirm_name": args.name}
    change = client.post(f"change-requests/{args.change_request}/confirm-data-loss/", body)
    out.emit(change, output.change_headline)
    return 0


def cmd_reject(client: Client, args: argparse.Namespace, out: output.Printer) -> int:
    body = {"comment": args.comment}
    change = client.post(f"change-requests/{args.change_request}/reject/", body)
    out.emit(change, output.change_headline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
