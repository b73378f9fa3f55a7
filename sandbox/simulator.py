"""iam:SimulatePrincipalPolicy, answered by the sandbox (moto has no policy simulator).

Evaluated with the same `evaluate_request` that authorizes live requests, so the portal's
real-AWS verification path (read the role back, ask the simulator) can be tested against a
server. Like AWS's simulator it uses the principal's attached managed, inline (and, for users,
group) policies plus any PolicyInputList, the boundary from PermissionsBoundaryPolicyInputList
or else the principal's own, and a resource policy only when one is passed in ResourcePolicy.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from provisioning.analysis.evaluator import (
    ALLOW,
    EXPLICIT_DENY,
    Decision,
    evaluate,
    evaluate_request,
    statements_of,
)
from sandbox import moto_state
from sandbox.aws_request import AwsRequest
from sandbox.errors import AwsError, Responder, StartResponse

NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
_DECISIONS = {ALLOW: "allowed", EXPLICIT_DENY: "explicitDeny"}
Source = tuple[str, str, dict[str, Any]]  # (SourcePolicyId, SourcePolicyType, document)


@dataclass(frozen=True)
class Simulation:
    principal: str
    identity: list[Source]
    boundary: Source | None
    resource_policy: Source | None
    context: dict[str, str | list[str]]


def simulate_principal_policy(request: AwsRequest) -> Responder:
    """A responder with the simulation's XML, or with the error IAM would answer."""
    try:
        simulation = _simulation(request)
    except ValueError as exc:
        return AwsError("iam", "InvalidInput", str(exc), 400).respond
    except LookupError as exc:
        return AwsError("iam", "NoSuchEntity", str(exc), 404).respond
    actions = request.member_list("ActionNames")
    if not actions:
        return AwsError("iam", "ValidationError", "ActionNames must list an action", 400).respond
    resources = request.member_list("ResourceArns") or ["*"]
    results = [_result(simulation, a, r) for a in actions for r in resources]
    return _xml_responder(results)


def _simulation(request: AwsRequest) -> Simulation:
    params = request.params()
    source_arn = params.get("PolicySourceArn", "")
    found = moto_state.principal_policies(source_arn)
    if found is None:
        raise LookupError(f"The role or user {source_arn!r} cannot be found.")
    inputs = request.member_list("PolicyInputList")
    identity = [*found.identity, *_parsed(inputs, "PolicyInputList", "none")]
    boundaries = _parsed(
        request.member_list("PermissionsBoundaryPolicyInputList"),
        "PermissionsBoundaryPolicyInputList",
        "none",
    )
    boundary = boundaries[0] if boundaries else None
    if boundary is None and found.boundary is not None:
        boundary = ("PermissionsBoundaryPolicy", "none", found.boundary)
    resource_policy = None
    if params.get("ResourcePolicy"):
        resource_policy = _parsed([params["ResourcePolicy"]], "ResourcePolicy", "resource")[0]
        resource_policy = ("ResourcePolicy", "resource", resource_policy[2])
    return Simulation(
        principal=params.get("CallerArn") or source_arn,
        identity=identity,
        boundary=boundary,
        resource_policy=resource_policy,
        context=_context_entries(request),
    )


def _parsed(documents: list[str], name: str, kind: str) -> list[Source]:
    parsed = []
    for index, text in enumerate(documents, start=1):
        try:
            document = json.loads(text)
        except ValueError:
            raise ValueError(f"{name}.member.{index} is not a JSON policy document") from None
        if not isinstance(document, dict):
            raise ValueError(f"{name}.member.{index} must be a JSON object")
        parsed.append((f"{name}.{index}", kind, document))
    return parsed


def _context_entries(request: AwsRequest) -> dict[str, str | list[str]]:
    params, context, index = request.params(), {}, 1
    while f"ContextEntries.member.{index}.ContextKeyName" in params:
        prefix = f"ContextEntries.member.{index}"
        values = request.member_list(f"{prefix}.ContextKeyValues")
        kind = params.get(f"{prefix}.ContextKeyType", "string")
        context[params[f"{prefix}.ContextKeyName"]] = (
            values if kind.endswith("List") else (values[0] if values else "")
        )
        index += 1
    return context


def _result(simulation: Simulation, action: str, resource: str) -> dict[str, Any]:
    decision = evaluate_request(
        identity_policies=[document for _, _, document in simulation.identity],
        boundary=simulation.boundary[2] if simulation.boundary else None,
        resource_policy=simulation.resource_policy[2] if simulation.resource_policy else None,
        principal=simulation.principal,
        action=action,
        resource=resource,
        context=simulation.context,
    )
    return {
        "action": action,
        "resource": resource,
        "decision": _DECISIONS.get(decision.effect, "implicitDeny"),
        "matched": _matched_sources(simulation, decision, action, resource),
        "missing": _missing_context(simulation, action, resource),
        "boundary_allows": _boundary_allows(simulation, action, resource),
    }


def _all_sources(simulation: Simulation) -> list[Source]:
    extra = [s for s in (simulation.boundary, simulation.resource_policy) if s is not None]
    return [*simulation.identity, *extra]


def _matched_sources(
    simulation: Simulation, decision: Decision, action: str, resource: str
) -> list[tuple[str, str]]:
    """The policy holding the deciding statement (AWS's MatchedStatements, without positions)."""
    if decision.statement is None:
        return []
    for source_id, kind, document in _all_sources(simulation):
        alone = evaluate(
            [document],
            action=action,
            resource=resource,
            principal=simulation.principal,
            context=simulation.context,
        )
        if alone.statement == decision.statement and alone.effect == decision.effect:
            return [(source_id, kind)]
    return []


def _missing_context(simulation: Simulation, action: str, resource: str) -> list[str]:
    """Condition keys of statements that apply to this action and resource but have no value."""
    known = {key.lower() for key in simulation.context}
    missing: dict[str, None] = {}
    for _, _, document in _all_sources(simulation):
        for _, statement in statements_of(document):
            condition = statement.get("Condition")
            if not isinstance(condition, Mapping) or not _applies(
                statement, simulation.principal, action, resource
            ):
                continue
            for keys in condition.values():
                for key in keys if isinstance(keys, Mapping) else ():
                    if str(key).lower() not in known:
                        missing[str(key)] = None
    return list(missing)


def _applies(statement: Mapping[str, Any], principal: str, action: str, resource: str) -> bool:
    unconditional = {k: v for k, v in statement.items() if k != "Condition"}
    unconditional["Effect"] = "Allow"
    decision = evaluate(
        [{"Statement": [unconditional]}], action=action, resource=resource, principal=principal
    )
    return decision.allowed


def _boundary_allows(simulation: Simulation, action: str, resource: str) -> bool | None:
    if simulation.boundary is None:
        return None
    decision = evaluate(
        [simulation.boundary[2]], action=action, resource=resource, context=simulation.context
    )
    return decision.allowed


def _xml_responder(results: list[dict[str, Any]]) -> Responder:
    members = "".join(_member_xml(r) for r in results)
    body = (
        f'<SimulatePrincipalPolicyResponse xmlns="{NAMESPACE}"><SimulatePrincipalPolicyResult>'
        f"<IsTruncated>false</IsTruncated><EvaluationResults>{members}</EvaluationResults>"
        "</SimulatePrincipalPolicyResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</SimulatePrincipalPolicyResponse>"
    ).encode()

    def respond(start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]

    return respond


def _member_xml(result: dict[str, Any]) -> str:
    matched = "".join(
        f"<member><SourcePolicyId>{escape(source_id)}</SourcePolicyId>"
        f"<SourcePolicyType>{escape(kind)}</SourcePolicyType></member>"
        for source_id, kind in result["matched"]
    )
    missing = "".join(f"<member>{escape(key)}</member>" for key in result["missing"])
    boundary = ""
    if result["boundary_allows"] is not None:
        allows = "true" if result["boundary_allows"] else "false"
        boundary = (
            "<PermissionsBoundaryDecisionDetail><AllowedByPermissionsBoundary>"
            f"{allows}</AllowedByPermissionsBoundary></PermissionsBoundaryDecisionDetail>"
        )
    return (
        f"<member><EvalActionName>{escape(result['action'])}</EvalActionName>"
        f"<EvalResourceName>{escape(result['resource'])}</EvalResourceName>"
        f"<EvalDecision>{result['decision']}</EvalDecision>"
        f"<MatchedStatements>{matched}</MatchedStatements>"
        f"<MissingContextValues>{missing}</MissingContextValues>{boundary}</member>"
    )
