"""OpenAPI schema hooks.

``only_v1`` documents each operation once, under /api/v1/: the same views also answer at /api/
and without the trailing slash (for old clients and for POSTs that cannot follow a redirect).

``complete`` gives every operation a summary and a description written for API users (never a
class docstring meant for maintainers), documents the error answers every operation can give
(the bodies of docs/api.md, "Errors") with their headers (``WWW-Authenticate`` on 401,
``Retry-After`` on 429), the ``Idempotency-Key`` header of POSTs, and drops query parameters a
list declares from the POST that shares its view.

Every operation can answer 401 and 429: authentication and the throttles (DRF's per-client rates
and the bad-token lockout of ``provisioning.security``) run before any view.
"""

from __future__ import annotations

from typing import Any

DETAIL = {"$ref": "#/components/schemas/Detail"}
ERRORS = {"$ref": "#/components/schemas/Errors"}

# operationId → (summary, description) where the view does not say it itself.
TEXTS = {
    "change_requests_list": (
        "Change requests",
        "Change requests of the microservices you may see, newest first, without their review.",
    ),
    "change_requests_create": ("Propose a change or a decommission", ""),
    "change_requests_retrieve": (
        "A change request with its review",
        "The request, its runs and reviews, and `review`: per workspace the plan, the analysed "
        "policies, grants, grant diff, findings and access matrix — before approval.",
    ),
    "change_requests_approve_create": ("Approve the plans you reviewed", ""),
    "change_requests_cancel_create": ("Cancel a change request", ""),
    "change_requests_reject_create": ("Reject a change request", ""),
    "change_requests_replan_create": ("Plan a failed change request again", ""),
    "change_requests_submit_create": ("Submit a draft for planning", ""),
    "clusters_list": ("Clusters", "Every cluster a microservice can deploy to."),
    "clusters_retrieve": (
        "A cluster with its node role audit",
        "The cluster and the last audit of its node role's policies.",
    ),
    "dry_run_create": ("What a spec would grant (nothing saved)", ""),
    "microservices_list": (
        "Microservices",
        "The microservices you may see, with their live resources, workspaces and `state`.",
    ),
    "microservices_create": ("Register a microservice", ""),
    "microservices_retrieve": (
        "A microservice",
        "Its live resources and, per cluster, its workspace: role, key, resource ARNs, "
        "verification and reconciliation.",
    ),
    "microservices_workspaces_verify_create": ("Verify a workspace's access again", ""),
    "runs_retrieve": (
        "A run with its log",
        "One Terraform run and its whole log (up to RUN_LOG_MAX_BYTES); follow a running one "
        "with GET /api/v1/runs/{id}/log/.",
    ),
    "webhooks_retrieve": ("A webhook subscription", "One of your team's subscriptions."),
    "webhooks_update": ("Replace a webhook subscription", "URL, events and `active`."),
    "webhooks_partial_update": ("Change a webhook subscription", 'e.g. `{"active": false}`.'),
    "webhooks_destroy": ("Delete a webhook subscription", "Its delivery log goes with it."),
}
INTERNAL_DOCSTRINGS = ("For APIViews:",)
UNAUTHENTICATED = {
    "WWW-Authenticate": {
        "description": "`Token`: send `Authorization: Token <key>`.",
        "required": True,
        "schema": {"type": "string", "enum": ["Token"]},
    }
}
THROTTLED_TEXT = (
    "Too many requests: over the API rate (`API_THROTTLE_USER`, `API_THROTTLE_ANON`), or too "
    "many bad tokens from this address (`API_FAILED_AUTH_LIMIT`). Wait `Retry-After` seconds."
)
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before sending again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}


def only_v1(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    return [e for e in endpoints if e[0].startswith("/api/v1/") and e[0].endswith("/")]


def complete(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                _texts(operation)
                _errors(method, operation)
    return result


def _texts(operation: dict[str, Any]) -> None:
    summary, description = TEXTS.get(operation["operationId"], ("", ""))
    current = operation.get("description", "")
    if current.startswith(INTERNAL_DOCSTRINGS):
        current = ""
    operation["summary"] = operation.get("summary") or summary or operation["operationId"]
    operation["description"] = current or description or operation["summary"] + "."


def _answer(
    schema: dict[str, str],
    text: str,
    headers: dict[str, Any] | None = None,
    example: dict[str, Any] | None = None,
) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    answer: dict[str, Any] = {"content": {"application/json": media}, "description": text}
    if headers:
        answer["headers"] = headers
    return answer


def _errors(method: str, operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    parameters = operation.get("parameters", [])
    if method != "get":
        parameters = [p for p in parameters if p.get("in") != "query"]
    responses.setdefault(
        "401",
        _answer(DETAIL, "No token, or one that is unknown, expired or revoked.", UNAUTHENTICATED),
    )
    responses.setdefault(
        "429",
        _answer(
            DETAIL,
            THROTTLED_TEXT,
            RETRY_AFTER,
            example={"detail": "Request was throttled. Expected available in 12 seconds."},
        ),
    )
    if method != "get":
        responses.setdefault("403", _answer(DETAIL, "Not allowed for this user."))
    if any(p.get("in") == "path" for p in parameters):
        responses.setdefault("404", _answer(DETAIL, "No such object you may see."))
    if any(p.get("in") == "query" for p in parameters):
        responses.setdefault("400", _answer(ERRORS, "An invalid filter or parameter."))
    if any(p.get("name") == "page" for p in parameters):
        responses.setdefault("404", _answer(DETAIL, "A page past the last one."))
    if "requestBody" in operation:
        responses.setdefault("400", _answer(ERRORS, "Invalid input; nothing was written."))
        responses.setdefault("413", _answer(DETAIL, "The body is over the size limit."))
        responses.setdefault("415", _answer(DETAIL, "The body is not JSON (or YAML for a spec)."))
    if method == "post":
        responses.setdefault("400", _answer(ERRORS, "Invalid input or Idempotency-Key."))
        responses.setdefault(
            "422", _answer(DETAIL, "The Idempotency-Key was used for a different request.")
        )
        parameters.append(
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
                "description": "A retry with the same key within 24 h (IDEMPOTENCY_KEY_TTL) gets "
                "the first answer.",
            }
        )
    if parameters:
        operation["parameters"] = parameters
    else:
        operation.pop("parameters", None)
    # Every operation: a control character (NUL...) in the address is refused before any view.
    responses.setdefault(
        "400", _answer(ERRORS, "A control character in the address (`errors.address`).")
    )
