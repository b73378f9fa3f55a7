"""AWS's error responses, shaped per protocol, so SDKs raise the same ClientError they would
against real AWS (boto3 reads the code from the body, not from our Python).

- JSON protocol (DynamoDB 1.0, KMS 1.1): HTTP 400 `{"__type": ..., "message": ...}`;
- S3 (REST-XML): `<Error><Code>..</Code><Message>..</Message></Error>`;
- query protocol (IAM, STS): `<ErrorResponse><Error><Type>Sender</Type>...</ErrorResponse>`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape

StartResponse = Callable[..., object]
Responder = Callable[[StartResponse], Iterable[bytes]]  # a complete answer, not yet sent

_JSON_CONTENT_TYPES = {
    "dynamodb": "application/x-amz-json-1.0",
    "kms": "application/x-amz-json-1.1",
}
_QUERY_NAMESPACES = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}
# DynamoDB's error type names are qualified with the API's namespace.
_JSON_TYPE_PREFIX = {"dynamodb": "com.amazonaws.dynamodb.v20120810#"}


@dataclass(frozen=True)
class AwsError:
    """One error answer: the service decides its shape, code/message/status its content."""

    service: str
    code: str
    message: str
    status: int

    def respond(self, start_response: StartResponse) -> Iterable[bytes]:
        body, content_type = self._render()
        start_response(
            f"{self.status} {_REASONS.get(self.status, 'Error')}",
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("x-amzn-RequestId", _request_id()),
                ("x-amzn-ErrorType", self.code),
            ],
        )
        return [body]

    def _render(self) -> tuple[bytes, str]:
        if self.service in _JSON_CONTENT_TYPES:
            document = {
                "__type": _JSON_TYPE_PREFIX.get(self.service, "") + self.code,
                "message": self.message,
            }
            return json.dumps(document).encode(), _JSON_CONTENT_TYPES[self.service]
        if self.service in _QUERY_NAMESPACES:
            return self._query_xml().encode(), "text/xml"
        return self._rest_xml().encode(), "application/xml"

    def _query_xml(self) -> str:
        return (
            f'<ErrorResponse xmlns="{_QUERY_NAMESPACES[self.service]}">'
            f"<Error><Type>Sender</Type><Code>{escape(self.code)}</Code>"
            f"<Message>{escape(self.message)}</Message></Error>"
            f"<RequestId>{_request_id()}</RequestId></ErrorResponse>"
        )

    def _rest_xml(self) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
            f"<RequestId>{_request_id()}</RequestId></Error>"
        )


def access_denied(service: str, message: str) -> AwsError:
    """Each service's own spelling of "not authorized" (JSON services 400, XML services 403)."""
    if service in _JSON_CONTENT_TYPES:
        return AwsError(service, "AccessDeniedException", message, 400)
    return AwsError(service, "AccessDenied", message, 403)


def invalid_session_token(service: str) -> AwsError:
    """STS keys presented with a session token that is not theirs (or none)."""
    message = "The security token included in the request is invalid."
    if service in _JSON_CONTENT_TYPES:
        return AwsError(service, "UnrecognizedClientException", message, 400)
    if service == "s3":
        return AwsError(service, "InvalidToken", message, 400)
    return AwsError(service, "InvalidClientTokenId", message, 403)


def expired_session_token(service: str) -> AwsError:
    message = "The security token included in the request is expired"
    if service in _JSON_CONTENT_TYPES:
        return AwsError(service, "ExpiredTokenException", message, 400)
    return AwsError(service, "ExpiredToken", message, 400 if service == "s3" else 403)


def not_authorized_message(*, caller_arn: str, action: str, resource: str, reason: str) -> str:
    return (
        f"User: {caller_arn} is not authorized to perform: {action} on resource: {resource} "
        f"because {reason}"
    )


def _request_id() -> str:
    return str(uuid.uuid4())


_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Error"}
