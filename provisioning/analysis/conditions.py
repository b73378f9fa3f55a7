"""IAM Condition blocks evaluated against a request context. Pure.

A block is ``{operator: {key: value | [values]}}``: every operator and every key must hold (AND),
the values of one key are alternatives (OR). Operators may carry the ``ForAnyValue:`` /
``ForAllValues:`` set prefixes and the ``IfExists`` suffix. An operator this module does not know
(dates, IP addresses, binary) or a policy variable (``${aws:username}``) cannot be decided here:
it is reported back so the caller treats the statement as not applying and says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

Context = Mapping[str, str | Sequence[str]]

FOR_ANY = "ForAnyValue:"
FOR_ALL = "ForAllValues:"
IF_EXISTS = "IfExists"


class Unsupported(Exception):  # a signal inside this package, never shown to a user
    """The block uses something this evaluator cannot decide; ``args[0]`` names it."""


@lru_cache(maxsize=4096)
def wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM wildcards: ``*`` any run of characters, ``?`` exactly one; everything else literal."""
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return wildcard_regex(pattern, ignore_case).match(value) is not None


def arn_like(pattern: str, value: str) -> bool:
    """ARNs compare component by component (partition, service, region, account, resource)."""
    p_parts = pattern.split(":", 5)
    v_parts = value.split(":", 5)
    if len(p_parts) != 6 or len(v_parts) != 6:
        return False
    return all(wildcard_match(p, v) for p, v in zip(p_parts, v_parts, strict=True))


def _numeric(op: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def compare(value: str, wanted: str) -> bool:
        try:
            return op(float(value), float(wanted))
        except ValueError:
            return False

    return compare


# Positive operators: value from the request, value from the policy -> match.
_POSITIVE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda v, w: v == w,
    "StringEqualsIgnoreCase": lambda v, w: v.lower() == w.lower(),
    "StringLike": lambda v, w: wildcard_match(w, v),
    "ArnEquals": lambda v, w: arn_like(w, v),  # AWS treats ArnEquals like ArnLike
    "ArnLike": lambda v, w: arn_like(w, v),
    "NumericEquals": _numeric(lambda v, w: v == w),
    "NumericLessThan": _numeric(lambda v, w: v < w),
    "NumericLessThanEquals": _numeric(lambda v, w: v <= w),
    "NumericGreaterThan": _numeric(lambda v, w: v > w),
    "NumericGreaterThanEquals": _numeric(lambda v, w: v >= w),
    "Bool": lambda v, w: v.lower() == w.lower(),
}
# Negated operators hold when the positive one matches none of the policy's values.
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}
SUPPORTED_OPERATORS = frozenset(_POSITIVE) | frozenset(_NEGATED) | {"Null"}


def _as_strings(value: Any) -> tuple[str, ...]:
    values = value if isinstance(value, list | tuple) else [value]
    return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in values)


def _lowered(context: Context | None) -> dict[str, tuple[str, ...]]:
    return {k.lower(): _as_strings(v) for k, v in (context or {}).items()}


def conditions_hold(block: Mapping[str, Any] | None, context: Context | None) -> bool:
    """True when every condition of ``block`` holds; raises ``Unsupported`` naming the operator."""
    if not block:
        return True
    if not isinstance(block, Mapping):
        raise Unsupported("Condition (not an object)")
    lowered = _lowered(context)
    results = [_operator_holds(op, keys, lowered) for op, keys in block.items()]
    return all(results)


def _operator_holds(operator: str, keys: Any, context: dict[str, tuple[str, ...]]) -> bool:
    set_mode, base = "", operator
    for prefix in (FOR_ANY, FOR_ALL):
        if base.startswith(prefix):
            set_mode, base = prefix, base.removeprefix(prefix)
    if_exists = base.endswith(IF_EXISTS) and base != "Null"
    base = base.removesuffix(IF_EXISTS) if if_exists else base
    if base not in SUPPORTED_OPERATORS or not isinstance(keys, Mapping):
        raise Unsupported(operator)
    holds = True
    for key, wanted in keys.items():
        policy_values = _as_strings(wanted)
        if any("${" in w for w in policy_values):
            raise Unsupported(f"{operator} (policy variable in {key})")
        request_values = context.get(str(key).lower())
        holds = holds and _key_holds(base, set_mode, if_exists, request_values, policy_values)
    return holds


def _key_holds(
    base: str,
    set_mode: str,
    if_exists: bool,
    request: tuple[str, ...] | None,
    wanted: tuple[str, ...],
) -> bool:
    if base == "Null":
        # "true": the key must be absent; "false": it must be present.
        return any((w.lower() == "true") == (not request) for w in wanted)
    if not request:
        if if_exists or set_mode == FOR_ALL:
            return True
        # AWS: a missing key fails a positive operator and satisfies a negated one.
        return base in _NEGATED
    negated = base in _NEGATED
    positive = _POSITIVE[_NEGATED.get(base, base)]

    def value_ok(value: str) -> bool:
        matched = any(positive(value, w) for w in wanted)
        return not matched if negated else matched

    if set_mode == FOR_ALL:
        return all(value_ok(v) for v in request)
    if set_mode == FOR_ANY or not negated:
        return any(value_ok(v) for v in request)
    return all(value_ok(v) for v in request)
