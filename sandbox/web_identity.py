"""AssumeRoleWithWebIdentity as AWS decides it, before moto hands out credentials.

moto accepts any token. Here the token must be one this sandbox's issuer signed and not expired;
its `iss` must be an IAM OIDC provider registered in the role's account, with `aud` among the
provider's client ids; and the role's trust policy must allow `sts:AssumeRoleWithWebIdentity`
for the provider as the Federated principal, with the token's claims as the condition keys
(`<issuer>:sub`, `<issuer>:aud`, `<issuer>:amr`). Refusals use STS's own codes and messages.
"""

from __future__ import annotations

from typing import Any

from provisioning.analysis.evaluator import evaluate
from sandbox import moto_state
from sandbox.aws_request import AwsRequest
from sandbox.errors import AwsError
from sandbox.oidc import InvalidToken, OidcIssuer

ACTION = "sts:AssumeRoleWithWebIdentity"
NOT_AUTHORIZED = AwsError("sts", "AccessDenied", f"Not authorized to perform {ACTION}", 403)


def refuse_web_identity(request: AwsRequest, issuer: OidcIssuer) -> AwsError | None:
    """The error AWS would answer for this AssumeRoleWithWebIdentity call, or None to let it
    through to moto."""
    params = request.params()
    try:
        claims = issuer.verify(params.get("WebIdentityToken", ""))
    except InvalidToken as exc:
        if exc.expired:
            return AwsError("sts", "ExpiredTokenException", str(exc), 400)
        return _invalid(str(exc))
    role_arn = params.get("RoleArn", "")
    if not moto_state.account_of_arn(role_arn).isdigit():
        return NOT_AUTHORIZED
    found = _provider_and_audiences(role_arn, claims)
    if isinstance(found, AwsError):
        return found
    provider, audiences = found
    trust = moto_state.role_trust_policy(role_arn)
    if trust is None:
        return NOT_AUTHORIZED
    issuer_name = str(claims["iss"]).removeprefix("https://")
    context = {
        f"{issuer_name}:sub": str(claims["sub"]),
        f"{issuer_name}:aud": audiences,
        f"{issuer_name}:amr": _listed(claims.get("amr")),
    }
    decision = evaluate(
        [trust], action=ACTION, resource=role_arn, principal=provider.arn, context=context
    )
    return None if decision.allowed else NOT_AUTHORIZED


def _provider_and_audiences(
    role_arn: str, claims: dict[str, Any]
) -> tuple[Any, list[str]] | AwsError:
    """The role's account's OIDC provider for the token's issuer, and the token's audiences that
    are among the provider's client ids — or STS's error when there is none of either."""
    partition = role_arn.split(":")[1] or "aws"
    issuer_name = str(claims["iss"]).removeprefix("https://")
    account_id = moto_state.account_of_arn(role_arn)
    provider = moto_state.oidc_provider(account_id, partition, issuer_name)
    if provider is None:
        return _invalid(f"No OpenIDConnect provider found in your account for {claims['iss']}")
    audiences = [a for a in _listed(claims.get("aud")) if a in provider.client_id_list]
    if not audiences:
        return _invalid("Incorrect token audience")
    return provider, audiences


def _invalid(message: str) -> AwsError:
    return AwsError("sts", "InvalidIdentityToken", message, 400)


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
