"""IAM condition operators: the ``Condition`` element of key policies and identity policies.

Semantics follow the IAM User Guide, "IAM JSON policy elements: Condition operators"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)
and "Single-valued vs. multivalued context keys"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html):

* several values for one key are OR-ed; several keys under one operator are AND-ed; several
  operators in one ``Condition`` block are AND-ed;
* condition key *names* are case-insensitive; values are compared case-sensitively except
  by the ``...IgnoreCase`` operators and ``Bool``;
* a key missing from the request makes a positive operator false and a negated one
  (``StringNotEquals``, ``ArnNotLike``, ...) true; ``...IfExists`` makes any operator true
  when its key is missing; ``Null`` tests presence;
* ``ForAnyValue:`` is true when at least one request value matches (false when the key is
  missing or empty); ``ForAllValues:`` is true when every request value matches (true when
  the key is missing or empty);
* policy variables (``${aws:username}``, ``${aws:PrincipalTag/team}``, ``${*}``, ``${?}``,
  ``${$}``, with an optional default ``${key, 'default'}``) are replaced in String and Arn
  values when the policy's Version is 2012-10-17
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).

Operators are one table (``BASE_OPERATORS``) of name → comparison; nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache

# A request context value: one string (single-valued key) or a tuple (multivalued key).
ContextValue = str | tuple[str, ...]
Context = Mapping[str, ContextValue]

Compare = Callable[[str, str], bool]


class SetQualifier(StrEnum):
    """The set operator prefixed to a condition operator."""

    FOR_ANY_VALUE = "ForAnyValue"
    FOR_ALL_VALUES = "ForAllValues"


class ValueKind(StrEnum):
    """What a policy value of an operator must look like; checked when the policy is parsed."""

    STRING = "string"
    NUMBER = "number"
    DATE = "date"
    BOOL = "bool"
    IP = "ip"
    ARN = "arn"
    ANY = "any"


# --- comparisons: (policy value, request value) -> bool --------------------------------------


@lru_cache(maxsize=4096)
def glob_regex(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """``*`` = any run of characters, ``?`` = one character; everything else is literal."""
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(parts), flags)


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """Whole-string match of ``value`` against a ``*``/``?`` wildcard pattern."""
    if pattern == "*":
        return True
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return glob_regex(pattern, ignore_case).fullmatch(value) is not None


def _string_equals(policy: str, request: str) -> bool:
    return policy == request


def _string_equals_ignore_case(policy: str, request: str) -> bool:
    return policy.casefold() == request.casefold()


def _string_like(policy: str, request: str) -> bool:
    return glob_match(policy, request)


def parse_number(text: str) -> float | None:
    """An IAM numeric value (integer or decimal), or None when it is not one."""
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return number if number == number else None  # NaN is not a number here


def parse_date(text: str) -> datetime | None:
    """An IAM date: ISO 8601 (date, or date-time with ``Z``/offset) or epoch seconds."""
    value = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _numeric(op: Callable[[float, float], bool]) -> Compare:
    def compare(policy: str, request: str) -> bool:
        p, r = parse_number(policy), parse_number(request)
        return p is not None and r is not None and op(r, p)

    return compare


def _date(op: Callable[[datetime, datetime], bool]) -> Compare:
    def compare(policy: str, request: str) -> bool:
        p, r = parse_date(policy), parse_date(request)
        return p is not None and r is not None and op(r, p)

    return compare


def _bool(policy: str, request: str) -> bool:
    return policy.lower() == request.lower()


def _binary(policy: str, request: str) -> bool:
    return policy == request  # both base64 text, as the request context carries it


@lru_cache(maxsize=1024)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _ip(policy: str, request: str) -> bool:
    network, address = _network(policy), _address(request)
    if network is None or address is None:
        return False
    return address.version == network.version and address in network


_ARN_PARTS = 6


def _arn_like(policy: str, request: str) -> bool:
    """Each of the six colon-separated ARN components is matched on its own, with wildcards."""
    p_parts = policy.split(":", _ARN_PARTS - 1)
    r_parts = request.split(":", _ARN_PARTS - 1)
    if len(p_parts) != _ARN_PARTS or len(r_parts) != _ARN_PARTS:
        return False
    return all(glob_match(p, r) for p, r in zip(p_parts, r_parts, strict=True))


@dataclass(frozen=True, slots=True)
class BaseOperator:
    """One condition operator without qualifiers: its comparison and whether it is negated."""

    name: str
    compare: Compare
    negated: bool
    kind: ValueKind
    variables: bool  # policy variables are substituted in its values


def _op(name: str, compare: Compare, kind: ValueKind, negated: bool = False) -> BaseOperator:
    variables = kind in (ValueKind.STRING, ValueKind.ARN)
    return BaseOperator(name, compare, negated, kind, variables)


_S, _N, _D, _A = ValueKind.STRING, ValueKind.NUMBER, ValueKind.DATE, ValueKind.ARN

BASE_OPERATORS: Mapping[str, BaseOperator] = {
    op.name.lower(): op
    for op in (
        _op("StringEquals", _string_equals, _S),
        _op("StringNotEquals", _string_equals, _S, negated=True),
        _op("StringEqualsIgnoreCase", _string_equals_ignore_case, _S),
        _op("StringNotEqualsIgnoreCase", _string_equals_ignore_case, _S, negated=True),
        _op("StringLike", _string_like, _S),
        _op("StringNotLike", _string_like, _S, negated=True),
        _op("NumericEquals", _numeric(lambda r, p: r == p), _N),
        _op("NumericNotEquals", _numeric(lambda r, p: r == p), _N, negated=True),
        _op("NumericLessThan", _numeric(lambda r, p: r < p), _N),
        _op("NumericLessThanEquals", _numeric(lambda r, p: r <= p), _N),
        _op("NumericGreaterThan", _numeric(lambda r, p: r > p), _N),
        _op("NumericGreaterThanEquals", _numeric(lambda r, p: r >= p), _N),
        _op("DateEquals", _date(lambda r, p: r == p), _D),
        _op("DateNotEquals", _date(lambda r, p: r == p), _D, negated=True),
        _op("DateLessThan", _date(lambda r, p: r < p), _D),
        _op("DateLessThanEquals", _date(lambda r, p: r <= p), _D),
        _op("DateGreaterThan", _date(lambda r, p: r > p), _D),
        _op("DateGreaterThanEquals", _date(lambda r, p: r >= p), _D),
        _op("Bool", _bool, ValueKind.BOOL),
        _op("BinaryEquals", _binary, ValueKind.ANY),
        _op("IpAddress", _ip, ValueKind.IP),
        _op("NotIpAddress", _ip, ValueKind.IP, negated=True),
        _op("ArnEquals", _arn_like, _A),
        _op("ArnNotEquals", _arn_like, _A, negated=True),
        _op("ArnLike", _arn_like, _A),
        _op("ArnNotLike", _arn_like, _A, negated=True),
    )
}

_NULL = "null"


@dataclass(frozen=True, slots=True)
class Operator:
    """A parsed condition operator: qualifier, base operator (or Null) and IfExists."""

    text: str  # as written in the policy
    base: BaseOperator | None  # None for Null
    qualifier: SetQualifier | None
    if_exists: bool

    @property
    def is_null(self) -> bool:
        return self.base is None


_QUALIFIERS: Mapping[str, SetQualifier] = {q.value.lower(): q for q in SetQualifier}
_IF_EXISTS = "ifexists"


def parse_operator(text: str) -> Operator | None:
    """Parse ``[ForAnyValue:|ForAllValues:]<Operator>[IfExists]``; None when unknown.

    Operator names are matched case-insensitively, as IAM does. ``Null`` takes no
    ``IfExists`` suffix (IAM: "...IfExists ... except the Null condition").
    """
    rest = text
    qualifier: SetQualifier | None = None
    if ":" in rest:
        prefix, rest = rest.split(":", 1)
        qualifier = _QUALIFIERS.get(prefix.lower())
        if qualifier is None:
            return None
    lowered = rest.lower()
    if lowered == _NULL:
        return Operator(text, None, qualifier, False)
    if_exists = lowered.endswith(_IF_EXISTS)
    if if_exists:
        lowered = lowered[: -len(_IF_EXISTS)]
    base = BASE_OPERATORS.get(lowered)
    if base is None:
        return None
    return Operator(text, base, qualifier, if_exists)


def value_is_valid(kind: ValueKind, value: str) -> bool:
    """Whether a policy value suits an operator of ``kind`` (e.g. a number for Numeric*)."""
    return _VALUE_CHECKS[kind](value)


def _valid_ip(value: str) -> bool:
    return _network(value) is not None


_VALUE_CHECKS: Mapping[ValueKind, Callable[[str], bool]] = {
    ValueKind.STRING: lambda v: True,
    ValueKind.ARN: lambda v: True,
    ValueKind.ANY: lambda v: True,
    ValueKind.NUMBER: lambda v: parse_number(v) is not None,
    ValueKind.DATE: lambda v: parse_date(v) is not None,
    ValueKind.BOOL: lambda v: v.lower() in ("true", "false"),
    ValueKind.IP: _valid_ip,
}


# --- policy variables ------------------------------------------------------------------------

_VARIABLE_RE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT_RE = re.compile(r"^\s*([^,\s]+)\s*,\s*'([^']*)'\s*$")
_SPECIAL: Mapping[str, str] = {"*": "*", "?": "?", "$": "$"}


class _Unresolved(Exception):
    """A policy variable names a key that the request does not carry (and has no default)."""


def substitute(value: str, context: Context) -> str | None:
    """Replace ``${...}`` variables from ``context``; None when one cannot be resolved.

    IAM: a variable whose key is missing (and has no default) makes that value match
    nothing. A multivalued key cannot be a variable.
    """
    if "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner in _SPECIAL:
            return _SPECIAL[inner]
        default: str | None = None
        m = _DEFAULT_RE.match(inner)
        if m is not None:
            inner, default = m.group(1), m.group(2)
        found = context.get(inner.strip().lower())
        if isinstance(found, str):
            return found
        if default is not None:
            return default
        raise _Unresolved(inner)

    try:
        return _VARIABLE_RE.sub(replace, value)
    except _Unresolved:
        return None


# --- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConditionClause:
    """One ``operator: {key: values}`` entry; ``key`` is stored lower-cased."""

    operator: Operator
    key: str
    values: tuple[str, ...]


def _values_for(clause: ConditionClause, context: Context, variables: bool) -> list[str]:
    base = clause.operator.base
    if not variables or base is None or not base.variables:
        return list(clause.values)
    resolved = (substitute(v, context) for v in clause.values)
    return [v for v in resolved if v is not None]


def _matches_any(compare: Compare, policy_values: Sequence[str], request: str) -> bool:
    return any(compare(p, request) for p in policy_values)


def _null(clause: ConditionClause, present: bool) -> bool:
    # Null: "true" means the key must be absent, "false" that it must be present; values OR.
    return any((v.lower() == "true") != present for v in clause.values)


def clause_matches(clause: ConditionClause, context: Context, variables: bool = True) -> bool:
    """Whether one condition clause holds for the request ``context`` (lower-cased keys).

    ``variables`` is False for policies of Version 2008-10-17, which have no policy variables.
    """
    op = clause.operator
    raw = context.get(clause.key)
    request_values: tuple[str, ...] = (raw,) if isinstance(raw, str) else (raw or ())
    present = raw is not None and len(request_values) > 0
    if op.base is None:
        return _null(clause, present)
    base = op.base
    if not present:
        if op.if_exists:
            return True
        if op.qualifier is SetQualifier.FOR_ALL_VALUES:
            return True
        if op.qualifier is SetQualifier.FOR_ANY_VALUE:
            return False
        return base.negated
    policy_values = _values_for(clause, context, variables)

    def one(request: str) -> bool:
        hit = _matches_any(base.compare, policy_values, request)
        return not hit if base.negated else hit

    if op.qualifier is SetQualifier.FOR_ALL_VALUES:
        return all(one(r) for r in request_values)
    if op.qualifier is SetQualifier.FOR_ANY_VALUE:
        return any(one(r) for r in request_values)
    # No set operator on a multivalued key: positive operators need some request value to
    # match; negated ones need no request value to match.
    hits = any(_matches_any(base.compare, policy_values, r) for r in request_values)
    return not hits if base.negated else hits


def conditions_match(
    clauses: Sequence[ConditionClause], context: Context, variables: bool = True
) -> bool:
    """AND over every clause (every operator, every key)."""
    return all(clause_matches(c, context, variables) for c in clauses)
