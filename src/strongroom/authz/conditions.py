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

Operators are one table (``BASE_OPERATORS``) of name → matcher factory. Each clause is
compiled once, when its policy is parsed: the operator's matcher is built over the clause's
values (a set for the ``String*``/``Bool`` operators, one compiled regex for ``*Like`` and
``Arn*``, parsed numbers, dates and networks), and the qualifier, ``IfExists`` and negation
are folded into one closure, so a request pays one dict lookup and one call per clause.
Only values holding policy variables are resolved per request. Nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache

# A request context value: one string (single-valued key) or a tuple (multivalued key).
ContextValue = str | tuple[str, ...]
Context = Mapping[str, ContextValue]

Hit = Callable[[str], bool]
"""Whether one request value matches any of a clause's policy values (before negation)."""
Prepare = Callable[[Sequence[str]], Hit]
"""Builds the ``Hit`` of an operator over a clause's (validated) policy values."""
Test = Callable[[Context], bool]
"""A compiled clause: whether it holds for a request context (lower-cased keys)."""


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


# --- wildcards, numbers, dates, addresses ------------------------------------------------------


@lru_cache(maxsize=4096)
def glob_regex(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """``*`` = any run of characters, ``?`` = one character; everything else is literal."""
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(parts), flags)


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


# Request values repeat (aws:CurrentTime changes once a second, a window in days is one of a
# few numbers), so their parsed forms are kept.
_request_number = lru_cache(maxsize=1024)(parse_number)
_request_date = lru_cache(maxsize=1024)(parse_date)


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


# --- matchers: one per operator, built over a clause's policy values ---------------------------


def _never(request: str) -> bool:
    return False


def _always(request: str) -> bool:
    return True


def _regex_hit(pattern: str, flags: int = 0) -> Hit:
    fullmatch = re.compile(pattern, re.DOTALL | flags).fullmatch

    def hit(request: str) -> bool:
        return fullmatch(request) is not None

    return hit


def _equals(values: Sequence[str]) -> Hit:
    if not values:
        return _never
    if len(values) == 1:
        return values[0].__eq__
    return frozenset(values).__contains__


def _equals_ignore_case(values: Sequence[str]) -> Hit:
    folded = frozenset(v.casefold() for v in values)

    def hit(request: str) -> bool:
        return request.casefold() in folded

    return hit if folded else _never


def _like(values: Sequence[str]) -> Hit:
    if "*" in values:
        return _always
    if not any("*" in v or "?" in v for v in values):
        return _equals(values)
    return _regex_hit("|".join(f"(?:{glob_regex(v).pattern})" for v in values))


def _bool(values: Sequence[str]) -> Hit:
    lowered = frozenset(v.lower() for v in values)

    def hit(request: str) -> bool:
        return request.lower() in lowered

    return hit if lowered else _never


def _numeric(op: Callable[[float, float], bool]) -> Prepare:
    def prepare(values: Sequence[str]) -> Hit:
        numbers = tuple(n for n in map(parse_number, values) if n is not None)

        def hit(request: str) -> bool:
            r = _request_number(request)
            return r is not None and any(op(r, p) for p in numbers)

        return hit if numbers else _never

    return prepare


def _date(op: Callable[[datetime, datetime], bool]) -> Prepare:
    def prepare(values: Sequence[str]) -> Hit:
        dates = tuple(d for d in map(parse_date, values) if d is not None)

        def hit(request: str) -> bool:
            r = _request_date(request)
            return r is not None and any(op(r, p) for p in dates)

        return hit if dates else _never

    return prepare


def _ip(values: Sequence[str]) -> Hit:
    networks = tuple(n for n in map(_network, values) if n is not None)

    def hit(request: str) -> bool:
        address = _address(request)
        return address is not None and any(
            address.version == n.version and address in n for n in networks
        )

    return hit if networks else _never


_ARN_PARTS = 6


def _arn_regex(pattern: str) -> str | None:
    """One ARN pattern as a regex: each of its six colon-separated components is matched on
    its own, with wildcards (``*``/``?`` stay inside a component; the last, the resource,
    may itself hold colons). None when the pattern has fewer than six components."""
    parts = pattern.split(":", _ARN_PARTS - 1)
    if len(parts) != _ARN_PARTS:
        return None

    def component(text: str, last: bool) -> str:
        star, one = (".*", ".") if last else ("[^:]*", "[^:]")
        return "".join(star if c == "*" else one if c == "?" else re.escape(c) for c in text)

    return ":".join(component(p, i == _ARN_PARTS - 1) for i, p in enumerate(parts))


def _arn_like(values: Sequence[str]) -> Hit:
    patterns = [p for p in map(_arn_regex, values) if p is not None]
    if not patterns:
        return _never
    return _regex_hit("|".join(f"(?:{p})" for p in patterns))


@dataclass(frozen=True, slots=True)
class BaseOperator:
    """One condition operator without qualifiers: its matcher factory, whether it is negated,
    what its values look like and how costly its match is (cheaper clauses run first)."""

    name: str
    prepare: Prepare
    negated: bool
    kind: ValueKind
    variables: bool  # policy variables are substituted in its values
    cost: int


_COST: Mapping[ValueKind, int] = {
    ValueKind.BOOL: 1,
    ValueKind.STRING: 2,
    ValueKind.ANY: 2,
    ValueKind.NUMBER: 3,
    ValueKind.ARN: 4,
    ValueKind.IP: 5,
    ValueKind.DATE: 5,
}


def _op(name: str, prepare: Prepare, kind: ValueKind, negated: bool = False) -> BaseOperator:
    variables = kind in (ValueKind.STRING, ValueKind.ARN)
    return BaseOperator(name, prepare, negated, kind, variables, _COST[kind])


_S, _N, _D, _A = ValueKind.STRING, ValueKind.NUMBER, ValueKind.DATE, ValueKind.ARN

BASE_OPERATORS: Mapping[str, BaseOperator] = {
    op.name.lower(): op
    for op in (
        _op("StringEquals", _equals, _S),
        _op("StringNotEquals", _equals, _S, negated=True),
        _op("StringEqualsIgnoreCase", _equals_ignore_case, _S),
        _op("StringNotEqualsIgnoreCase", _equals_ignore_case, _S, negated=True),
        _op("StringLike", _like, _S),
        _op("StringNotLike", _like, _S, negated=True),
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
        # Both sides are base64 text, as the request context carries it.
        _op("BinaryEquals", _equals, ValueKind.ANY),
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


def _shape(key: str, hit: Hit, op: Operator, base: BaseOperator) -> Test:
    """The clause's test: ``hit`` over the request's values of ``key``, with the operator's
    negation, set qualifier and ``IfExists`` folded in once."""
    negated = base.negated
    if op.qualifier is SetQualifier.FOR_ALL_VALUES:

        def for_all(context: Context) -> bool:
            raw = context.get(key)
            if isinstance(raw, str):
                return hit(raw) is not negated
            # Missing or empty: vacuously true.
            return raw is None or all(hit(r) is not negated for r in raw)

        return for_all
    if op.qualifier is SetQualifier.FOR_ANY_VALUE:
        absent_any = op.if_exists

        def for_any(context: Context) -> bool:
            raw = context.get(key)
            if raw is None or (not raw and not isinstance(raw, str)):
                return absent_any
            if isinstance(raw, str):
                return hit(raw) is not negated
            return any(hit(r) is not negated for r in raw)

        return for_any
    # No set operator (a multivalued key then needs some request value to match a positive
    # operator, and none to match a negated one).
    absent = op.if_exists or negated

    def single(context: Context) -> bool:
        raw = context.get(key)
        if raw is None:
            return absent
        if isinstance(raw, str):
            return hit(raw) is not negated
        if not raw:
            return absent
        return any(map(hit, raw)) is not negated

    return single


def _null(key: str, values: Iterable[str]) -> Test:
    # Null: "true" means the key must be absent, "false" that it must be present; values OR.
    wanted = {v.lower() == "true" for v in values}
    if_absent, if_present = True in wanted, False in wanted

    def null(context: Context) -> bool:
        raw = context.get(key)
        present = raw is not None and (isinstance(raw, str) or len(raw) > 0)
        return if_present if present else if_absent

    return null


def _with_variables(key: str, values: tuple[str, ...], op: Operator, base: BaseOperator) -> Test:
    """A clause whose values hold policy variables: resolved against each request."""

    def test(context: Context) -> bool:
        resolved = [v for v in (substitute(raw, context) for raw in values) if v is not None]
        return _shape(key, base.prepare(resolved), op, base)(context)

    return test


def _compile(key: str, values: tuple[str, ...], op: Operator, variables: bool) -> Test:
    base = op.base
    if base is None:
        return _null(key, values)
    if variables and base.variables and any("${" in v for v in values):
        return _with_variables(key, values, op, base)
    return _shape(key, base.prepare(values), op, base)


def _referenced_keys(key: str, values: tuple[str, ...], op: Operator) -> frozenset[str]:
    found = {key}
    if op.base is not None and op.base.variables:
        for value in values:
            for inner in _VARIABLE_RE.findall(value):
                m = _DEFAULT_RE.match(inner)
                found.add((m.group(1) if m else inner).strip().lower())
    return frozenset(found - set(_SPECIAL))


@dataclass(frozen=True, slots=True)
class ConditionClause:
    """One ``operator: {key: values}`` entry; ``key`` is stored lower-cased.

    Compiled when built: ``test`` is the clause for policies with policy variables
    (Version 2012-10-17), ``literal_test`` for those without (2008-10-17).
    ``referenced_keys`` are the condition keys it reads (lower-cased): its own and, for
    operators that take policy variables, those its values name. ``cost`` ranks tests:
    cheap ones run first, ones that resolve variables last."""

    operator: Operator
    key: str
    values: tuple[str, ...]
    test: Test = field(init=False, repr=False, compare=False)
    literal_test: Test = field(init=False, repr=False, compare=False)
    referenced_keys: frozenset[str] = field(init=False, repr=False, compare=False)
    cost: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        literal = _compile(self.key, self.values, self.operator, variables=False)
        with_variables = _compile(self.key, self.values, self.operator, variables=True)
        base = self.operator.base
        cost = 0 if base is None else base.cost + (10 if with_variables is not literal else 0)
        object.__setattr__(self, "literal_test", literal)
        object.__setattr__(self, "test", with_variables)
        object.__setattr__(
            self, "referenced_keys", _referenced_keys(self.key, self.values, self.operator)
        )
        object.__setattr__(self, "cost", cost)
