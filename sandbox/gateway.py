"""The WSGI layer in front of moto that makes the sandbox enforce IAM like AWS for what we
provision (see docs/sandbox.md for what it does and does not evaluate).

In order, for every request:
1. `/_sandbox/oidc/...` — the demo OIDC issuer (token minting, discovery document, JWKS);
   `/_sandbox/faults` — injected faults (throttling; sandbox.faults), answered before the rest;
2. `AssumeRoleWithWebIdentity` — refused unless the token and the role's trust policy allow it;
3. requests signed with STS-issued credentials (web identity or AssumeRole, in any account) or
   with an IAM user's own access key — every (action, resource) check the request implies must be
   allowed by the role's (user's) policies, boundary and the resource's policy;
4. `iam:SimulatePrincipalPolicy` — answered here (moto has no policy simulator).
Everything else (the admin credentials ``testing``, for set-up) goes to moto untouched.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from provisioning.analysis.evaluator import EXPLICIT_DENY, Decision, evaluate_request
from sandbox import faults, moto_state, oidc, simulator
from sandbox.authz import Caller, Check, checks_for
from sandbox.aws_request import AwsRequest, Environ, parse_request, read_body
from sandbox.errors import (
    AwsError,
    Responder,
    StartResponse,
    access_denied,
    expired_session_token,
    invalid_session_token,
    not_authorized_message,
)
from sandbox.web_identity import refuse_web_identity

WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class SandboxGateway:
    def __init__(self, app: WsgiApp, *, issuer: oidc.OidcIssuer | None = None) -> None:
        self.app = app
        self.issuer = issuer or oidc.OidcIssuer()
        self.faults = faults.Faults()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(oidc.DISCOVERY_PREFIX):
            return self._oidc(environ, path)(start_response)
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        if path == faults.PATH:
            return self._faults(environ)(start_response)
        request = parse_request(environ)
        try:
            fault = self.faults.take(request.service)
            answer = fault.respond if fault is not None else self._intercept(request)
        except Exception:  # a bug here must refuse (fail closed) and say where
            traceback.print_exc(file=sys.stderr)
            message = "the sandbox could not authorize this request; see the sandbox's output"
            answer = AwsError(request.service, "InternalFailure", message, 500).respond
        if answer is not None:
            return answer(start_response)
        return self.app(environ, start_response)

    def _intercept(self, request: AwsRequest) -> Responder | None:
        action = request.params().get("Action") if request.service in ("iam", "sts") else None
        if request.service == "sts" and action == "AssumeRoleWithWebIdentity":
            refusal = refuse_web_identity(request, self.issuer)
            return refusal.respond if refusal is not None else None
        if request.access_key_id:
            refusal = self._refuse_session_request(request)
            if refusal is not None:
                return refusal.respond
        if request.service == "iam" and action == "SimulatePrincipalPolicy":
            return simulator.simulate_principal_policy(request)
        return None

    def _refuse_session_request(self, request: AwsRequest) -> AwsError | None:
        """Authorize a request made with an assumed role's keys; None when allowed (or when
        the keys are not STS-issued: the admin credentials are never enforced)."""
        assert request.access_key_id is not None
        session = moto_state.assumed_role_for(request.access_key_id, request.region)
        if session is None:
            return self._refuse_user_request(request)
        if request.session_token != session.session_token:
            return invalid_session_token(request.service)
        if session.expiration < datetime.now(UTC).replace(tzinfo=None):
            return expired_session_token(request.service)
        caller = Caller(
            role_arn=session.role_arn,
            session_arn=session.arn,
            account_id=session.account_id,
            partition=session.partition,
        )
        return _refuse_unauthorized(request, caller)

    def _refuse_user_request(self, request: AwsRequest) -> AwsError | None:
        """An IAM user's own key (the worker's base credentials, which may only assume the
        deployment roles) is judged by the user's policies, as AWS does."""
        assert request.access_key_id is not None
        user_arn = moto_state.user_for_access_key(request.access_key_id)
        if user_arn is None:
            return None
        caller = Caller(
            role_arn=user_arn,
            session_arn=user_arn,
            account_id=moto_state.account_of_arn(user_arn),
            partition=user_arn.split(":")[1],
            principal_type="User",
        )
        return _refuse_unauthorized(request, caller)

    def _oidc(self, environ: Environ, path: str) -> Responder:
        if path == oidc.TOKEN_PATH and environ.get("REQUEST_METHOD") == "POST":
            return self._mint(environ)
        rest = path.removeprefix(oidc.DISCOVERY_PREFIX)
        issuer, _, document = rest.partition("/.well-known/")
        if oidc.ISSUER_PATTERN.fullmatch(issuer) and document == "openid-configuration":
            base = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
            jwks_uri = f"{base}{oidc.DISCOVERY_PREFIX}{issuer}/.well-known/jwks.json"
            return _json(200, self.issuer.discovery(issuer, jwks_uri=jwks_uri))
        if oidc.ISSUER_PATTERN.fullmatch(issuer) and document == "jwks.json":
            return _json(200, self.issuer.jwks())
        return _json(404, {"message": f"no such sandbox OIDC document: {path}"})

    def _faults(self, environ: Environ) -> Responder:
        if environ.get("REQUEST_METHOD") != "POST":
            return _json(200, self.faults.pending())
        try:
            return _json(200, self.faults.configure(json.loads(read_body(environ) or b"null")))
        except ValueError as exc:  # also json.JSONDecodeError
            message = str(exc) if isinstance(exc, faults.FaultError) else "body is not JSON"
            return _json(400, {"message": message})

    def _mint(self, environ: Environ) -> Responder:
        try:
            document = json.loads(read_body(environ) or b"null")
            token_request = oidc.parse_token_request(document)
        except ValueError as exc:  # also json.JSONDecodeError
            message = str(exc) if isinstance(exc, oidc.TokenRequestError) else "body is not JSON"
            return _json(400, {"message": message})
        return _json(200, {"token": self.issuer.mint(token_request)})


def _refuse_unauthorized(request: AwsRequest, caller: Caller) -> AwsError | None:
    checks = checks_for(request, caller)
    if checks is None:
        return None  # a service we do not enforce: see docs/sandbox.md
    policies = moto_state.principal_policies(caller.role_arn)
    for check in checks:
        decision = authorize(check, caller=caller, request=request, policies=policies)
        if not decision.allowed:
            return access_denied(request.service, _denial_message(check, caller, decision))
    return None


def authorize(
    check: Check,
    *,
    caller: Caller,
    request: AwsRequest,
    policies: moto_state.PrincipalPolicies | None,
) -> Decision:
    context: dict[str, Any] = {
        "aws:SecureTransport": "true" if request.secure else "false",
        "aws:PrincipalArn": caller.role_arn,
        "aws:PrincipalAccount": caller.account_id,
        "aws:PrincipalType": caller.principal_type,
        "aws:RequestedRegion": request.region,
        **check.context,
    }
    return evaluate_request(
        identity_policies=policies.documents if policies is not None else [],
        boundary=policies.boundary if policies is not None else None,
        resource_policy=check.resource_policy,
        resource_policy_required=check.resource_policy_required,
        principal=caller.role_arn,
        action=check.action,
        resource=check.resource,
        context=context,
    )


def _denial_message(check: Check, caller: Caller, decision: Decision) -> str:
    if decision.effect == EXPLICIT_DENY:
        reason = f"of an explicit deny in statement {decision.statement}"
    elif check.resource_policy_required:
        reason = f"no identity-based policy and key policy together allow the {check.action} action"
    else:
        reason = f"no identity-based policy allows the {check.action} action"
    return not_authorized_message(
        caller_arn=caller.session_arn, action=check.action, resource=check.resource, reason=reason
    )


def _json(status: int, document: dict[str, Any]) -> Responder:
    body = json.dumps(document).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")

    def respond(start_response: StartResponse) -> Iterable[bytes]:
        start_response(
            f"{status} {reason}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return respond
