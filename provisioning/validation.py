"""Name and identifier rules, checked at the boundary (forms, API, spec files, models).

Each validator raises ``django.core.exceptions.ValidationError`` with a message that says what to
change; forms, DRF serializers and model fields all understand it. Pure: no settings, no I/O.
"""

from __future__ import annotations

import ipaddress
import re

from django.core.exceptions import ValidationError

DNS1123_LABEL_MAX = 63
S3_BUCKET_MIN, S3_BUCKET_MAX = 3, 63
DYNAMODB_TABLE_MIN, DYNAMODB_TABLE_MAX = 3, 255
IAM_ROLE_NAME_MAX = 64

_DNS1123_CHARS = re.compile(r"[a-z0-9-]+")
_S3_CHARS = re.compile(r"[a-z0-9.-]+")
_DYNAMODB_CHARS = re.compile(r"[A-Za-z0-9_.-]+")
_IAM_ROLE_CHARS = re.compile(r"[\w+=,.@-]+", re.ASCII)
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}")
_OIDC_PROVIDER_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov):iam::(?P<account>\d{12}):oidc-provider/"
    r"(?P<issuer>oidc\.eks\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/id/[A-Za-z0-9]{1,64})"
)
# Prefixes and suffixes AWS reserves for access points, aliases and directory buckets.
_S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def validate_dns1123_label(value: str, *, what: str = "name") -> None:
    """Kubernetes names (namespace, service account) and portal names (microservice, resource)."""
    rule = (
        f"a {what} must be a DNS-1123 label: 1-{DNS1123_LABEL_MAX} lowercase letters, digits "
        "or '-', starting and ending with a letter or digit"
    )
    if not isinstance(value, str) or not value:
        raise ValidationError(f"The {what} is empty; {rule}.", code="required")
    if len(value) > DNS1123_LABEL_MAX:
        raise ValidationError(
            f"'{value}' is {len(value)} characters; {rule}. Shorten it.", code="too_long"
        )
    if value != value.lower() and _DNS1123_CHARS.fullmatch(value.lower()):
        raise ValidationError(
            f"'{value}' has uppercase letters; {rule}. Use '{value.lower()}'.", code="uppercase"
        )
    if not _DNS1123_CHARS.fullmatch(value):
        raise ValidationError(
            f"'{value}' has characters other than a-z, 0-9 and '-'; {rule}.", code="invalid_chars"
        )
    if value[0] == "-" or value[-1] == "-":
        raise ValidationError(f"'{value}' starts or ends with '-'; {rule}.", code="edge_hyphen")


def validate_s3_bucket_name(value: str) -> None:
    """S3 general purpose bucket naming rules (the subset that can be checked offline)."""
    n = len(value)
    if not S3_BUCKET_MIN <= n <= S3_BUCKET_MAX:
        raise ValidationError(
            f"S3 bucket name '{value}' is {n} characters; it must be "
            f"{S3_BUCKET_MIN}-{S3_BUCKET_MAX}. Shorten the microservice, cluster or resource name.",
            code="bucket_length",
        )
    if not _S3_CHARS.fullmatch(value):
        raise ValidationError(
            f"S3 bucket name '{value}' may only contain lowercase letters, digits, '.' and '-'.",
            code="bucket_chars",
        )
    if not (value[0].isalnum() and value[-1].isalnum()):
        raise ValidationError(
            f"S3 bucket name '{value}' must start and end with a letter or digit.",
            code="bucket_edge",
        )
    if ".." in value:
        raise ValidationError(
            f"S3 bucket name '{value}' must not contain two adjacent periods ('..').",
            code="bucket_dots",
        )
    if _looks_like_ip(value):
        raise ValidationError(
            f"S3 bucket name '{value}' must not be formatted as an IP address.", code="bucket_ip"
        )
    for prefix in _S3_RESERVED_PREFIXES:
        if value.startswith(prefix):
            raise ValidationError(
                f"S3 bucket name '{value}' must not start with the reserved prefix '{prefix}'.",
                code="bucket_prefix",
            )
    for suffix in _S3_RESERVED_SUFFIXES:
        if value.endswith(suffix):
            raise ValidationError(
                f"S3 bucket name '{value}' must not end with the reserved suffix '{suffix}'.",
                code="bucket_suffix",
            )


def _looks_like_ip(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def validate_dynamodb_table_name(value: str) -> None:
    n = len(value)
    if not DYNAMODB_TABLE_MIN <= n <= DYNAMODB_TABLE_MAX:
        raise ValidationError(
            f"DynamoDB table name '{value}' is {n} characters; it must be "
            f"{DYNAMODB_TABLE_MIN}-{DYNAMODB_TABLE_MAX}.",
            code="table_length",
        )
    if not _DYNAMODB_CHARS.fullmatch(value):
        raise ValidationError(
            f"DynamoDB table name '{value}' may only contain letters, digits, '_', '-' and '.'.",
            code="table_chars",
        )


def validate_iam_role_name(value: str) -> None:
    if len(value) > IAM_ROLE_NAME_MAX:
        raise ValidationError(
            f"IAM role name '{value}' is {len(value)} characters; IAM allows {IAM_ROLE_NAME_MAX}. "
            "Shorten the cluster or microservice name.",
            code="role_length",
        )
    if not value or not _IAM_ROLE_CHARS.fullmatch(value):
        raise ValidationError(
            f"IAM role name '{value}' may only contain letters, digits and '+=,.@_-'.",
            code="role_chars",
        )


def validate_account_id(value: str) -> None:
    if not isinstance(value, str) or not _ACCOUNT_ID.fullmatch(value):
        raise ValidationError(
            f"AWS account id '{value}' must be exactly 12 digits (keep leading zeros; quote it).",
            code="account_id",
        )


def validate_region(value: str) -> None:
    if not isinstance(value, str) or not _REGION.fullmatch(value):
        raise ValidationError(
            f"AWS region '{value}' is not a region code; use the form 'eu-west-1' or 'us-east-2'.",
            code="region",
        )


def parse_oidc_provider_arn(value: str) -> dict[str, str]:
    """Split an EKS IAM OIDC provider ARN into partition, account, issuer and region."""
    match = _OIDC_PROVIDER_ARN.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValidationError(
            f"OIDC provider ARN '{value}' is not an EKS IAM OIDC provider ARN; expected "
            "'arn:aws:iam::<12-digit account>:oidc-provider/"
            "oidc.eks.<region>.amazonaws.com/id/<ID>' "
            "(see the cluster's 'OpenID Connect provider URL' in the EKS console).",
            code="oidc_provider_arn",
        )
    return {k: match.group(k) for k in ("partition", "account", "issuer", "region")}


def validate_oidc_provider_arn(value: str) -> None:
    parse_oidc_provider_arn(value)


def validate_portal_name(value: str, *, what: str = "name") -> None:
    """Cluster, microservice and resource names: DNS-1123 labels without ``--``.

    ``--`` joins them into physical AWS names (``provisioning.iam.naming``); refusing it inside a
    part is what makes two different (cluster, microservice, resource) triples never share a name.
    """
    validate_dns1123_label(value, what=what)
    if "--" in value:
        raise ValidationError(
            f"'{value}' contains '--'; the portal joins names with '--', so a {what} may not "
            "contain it. Use a single '-'.",
            code="double_hyphen",
        )


# C0 controls and DEL; multi-line free text (a justification, a comment) may keep \t \n \r.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_CHARS_EXCEPT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_character(value: object, *, multiline: bool = False) -> str | None:
    """The first control character in ``value`` as ``U+0000``, or None (also for non-strings)."""
    if not isinstance(value, str):
        return None
    found = (_CONTROL_CHARS_EXCEPT_LINES if multiline else _CONTROL_CHARS).search(value)
    return f"U+{ord(found.group()):04X}" if found else None


def control_character_message(code_point: str, *, what: str = "value") -> str:
    return f"The {what} contains a control character ({code_point}); remove it."


def validate_no_control_characters(
    value: object, *, what: str = "text", multiline: bool = False
) -> None:
    """No NUL or other control character; ``multiline`` text may hold tabs and line breaks.

    PostgreSQL refuses NUL in text columns (a 500 if it got that far), and the rest only hide text.
    """
    code_point = control_character(value, multiline=multiline)
    if code_point:
        raise ValidationError(
            control_character_message(code_point, what=what), code="control_characters"
        )


def control_character_errors(
    data: object, *, multiline: frozenset[str] | set[str] = frozenset()
) -> dict[str, list[str]]:
    """Path (``resources[1].name``) → message for every string, or key, in JSON-shaped data that
    holds a control character. Top-level keys named in ``multiline`` may hold tabs and line breaks.

    Walked with a stack, not recursion: the caller may not have bounded the depth (YAML bodies).
    """
    errors: dict[str, list[str]] = {}
    stack: list[tuple[str, object, bool]] = [("", data, False)]
    while stack:
        path, item, lines_ok = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                child = f"{path}.{key}" if path else str(key)
                if code_point := control_character(key):
                    errors.setdefault(child, []).append(
                        control_character_message(code_point, what="field name")
                    )
                    continue
                stack.append((child, value, lines_ok or (not path and key in multiline)))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", value, lines_ok) for i, value in enumerate(item))
        elif code_point := control_character(item, multiline=lines_ok):
            errors.setdefault(path, []).append(control_character_message(code_point))
    return dict(sorted(errors.items()))


_BUCKET_SUFFIX = re.compile(r"[a-z0-9.-]{0,40}")


def validate_bucket_suffix(value: str) -> None:
    """The installation-wide S3 bucket name suffix (``S3_BUCKET_NAME_SUFFIX``)."""
    if not isinstance(value, str) or not _BUCKET_SUFFIX.fullmatch(value):
        raise ValidationError(
            f"S3 bucket name suffix '{value}' must be at most 40 of a-z, 0-9, '.' and '-' "
            "(for example '-111122223333').",
            code="bucket_suffix",
        )
    if value and not value[-1].isalnum():
        raise ValidationError(
            f"S3 bucket name suffix '{value}' must end with a letter or digit.",
            code="bucket_suffix",
        )
