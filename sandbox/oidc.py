"""The sandbox's OIDC issuer: it signs service-account tokens the way an EKS cluster's issuer does.

One RSA key per sandbox process, made at start-up and never written anywhere: a token is only
valid against the sandbox that minted it. Any EKS-shaped issuer name is served by this one key,
so tests and the demo can play several clusters. `mint_token` is the client side for tests and
for the portal's verification.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

TOKEN_PATH = "/_sandbox/oidc/token"  # noqa: S105 - a URL path, not a secret
DISCOVERY_PREFIX = "/_sandbox/oidc/"
DEFAULT_AUDIENCE = "sts.amazonaws.com"
DEFAULT_TTL_SECONDS = 3600
MAX_TTL_SECONDS = 86400
ALGORITHM = "RS256"
ISSUER_PATTERN = re.compile(r"oidc\.eks\.[a-z0-9-]+\.amazonaws\.com/id/[A-Za-z0-9]{1,64}")
# Kubernetes names: DNS-1123 labels for namespaces, subdomains for service accounts.
_NAMESPACE = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_SERVICE_ACCOUNT = r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?"
SUBJECT_PATTERN = re.compile(
    rf"system:serviceaccount:(?P<ns>{_NAMESPACE}):(?P<sa>{_SERVICE_ACCOUNT})"
)
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TokenRequestError(ValueError):
    """A token request the issuer refuses; the message says which field to change."""


class InvalidToken(Exception):
    """A presented token the issuer did not sign, or that has expired (``expired``)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class TokenRequest:
    issuer: str  # without the scheme, as IAM spells the provider URL
    subject: str
    audience: str
    ttl: int


def parse_token_request(document: Any) -> TokenRequest:
    """Validate the JSON body of POST /_sandbox/oidc/token."""
    if not isinstance(document, Mapping):
        raise TokenRequestError('send a JSON object: {"issuer": ..., "sub": ..., "aud": ...}')
    issuer = str(document.get("issuer", "")).removeprefix("https://")
    if not ISSUER_PATTERN.fullmatch(issuer):
        raise TokenRequestError(
            f"issuer {issuer!r} must look like oidc.eks.<region>.amazonaws.com/id/<ID>"
        )
    subject = str(document.get("sub", ""))
    if not SUBJECT_PATTERN.fullmatch(subject):
        raise TokenRequestError(
            f"sub {subject!r} must be system:serviceaccount:<namespace>:<service account>"
        )
    audience = document.get("aud", DEFAULT_AUDIENCE)
    if not isinstance(audience, str) or not audience or len(audience) > 255:
        raise TokenRequestError("aud must be a non-empty string, e.g. sts.amazonaws.com")
    ttl = document.get("ttl", DEFAULT_TTL_SECONDS)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL_SECONDS:
        raise TokenRequestError(f"ttl must be whole seconds between 1 and {MAX_TTL_SECONDS}")
    return TokenRequest(issuer=issuer, subject=subject, audience=audience, ttl=ttl)


class OidcIssuer:
    """The per-process signing key and what is derived from it."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = uuid.uuid4().hex

    def mint(self, request: TokenRequest, *, now: float | None = None) -> str:
        """A projected service-account token with EKS's claims."""
        issued = int(now if now is not None else time.time())
        match = SUBJECT_PATTERN.fullmatch(request.subject)
        assert match is not None  # parse_token_request checked it
        claims = {
            "iss": f"https://{request.issuer}",
            "sub": request.subject,
            "aud": [request.audience],
            "iat": issued,
            "nbf": issued,
            "exp": issued + request.ttl,
            "kubernetes.io": {
                "namespace": match["ns"],
                "serviceaccount": {"name": match["sa"], "uid": str(uuid.uuid4())},
            },
        }
        headers = {"kid": self.key_id}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers=headers)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this issuer signed and that is still valid."""
        try:
            return jwt.decode(
                token,
                self._key.public_key(),
                algorithms=[ALGORITHM],
                options={"require": ["iss", "sub", "aud", "exp", "iat"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("Token expired", expired=True) from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"The web identity token is not valid: {exc}") from None

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.key_id, "use": "sig", "alg": ALGORITHM})
        return {"keys": [jwk]}

    def discovery(self, issuer: str, *, jwks_uri: str) -> dict[str, Any]:
        return {
            "issuer": f"https://{issuer}",
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "claims_supported": ["sub", "iss"],
        }


def mint_token(
    endpoint_url: str,
    *,
    issuer: str,
    namespace: str,
    service_account: str,
    audience: str = DEFAULT_AUDIENCE,
    ttl: int | None = None,
    timeout: float = 10.0,
) -> str:
    """Ask the sandbox at `endpoint_url` for a pod's service-account token."""
    document: dict[str, Any] = {
        "issuer": issuer,
        "sub": f"system:serviceaccount:{namespace}:{service_account}",
        "aud": audience,
    }
    if ttl is not None:
        document["ttl"] = ttl
    url = endpoint_url.rstrip("/") + TOKEN_PATH
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the sandbox endpoint must be an http(s) URL, not {endpoint_url!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=json.dumps(document).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with _DIRECT.open(request, timeout=timeout) as response:
            return str(json.loads(response.read())["token"])
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise ValueError(f"the sandbox refused the token request ({exc.code}): {detail}") from None
