"""What every API endpoint answers a token that no longer opens the door (expired, revoked, or
never issued): 401 in the JSON error shape, with the header that says how to authenticate."""

from __future__ import annotations

TOKEN_REFUSED = {"detail": "Invalid, expired or revoked token."}


def token(key: str) -> dict[str, str]:
    """The test client's keyword for ``Authorization: Token <key>``."""
    return {"HTTP_AUTHORIZATION": f"Token {key}"}


def assert_token_refused(response) -> None:
    assert response.status_code == 401, response.content[:200]
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == TOKEN_REFUSED
