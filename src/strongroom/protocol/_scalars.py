"""Scalar shapes of the AWS JSON 1.1 protocol: JSON value -> Python value, and their constraints.

Wording follows the AWS (Coral) JSON deserialiser, which every JSON 1.1 service shares:
``STRING_VALUE can not be converted to an Integer``, ``Start of list found where not
expected``, ``Start of structure or map found where not expected.`` (sic: one with a full
stop, one without) and ``Base64 encoded length is expected a multiple of 4 bytes but
found: N``. Where AWS would echo a value that may be secret (a blob), the member path is
named instead.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from strongroom.domain.errors import KmsError, SerializationException

Convert = Callable[[Any, str], Any]
"""``convert(json_value, path)`` returns the Python value or raises SerializationException."""

Check = tuple[Callable[[Any], bool], str]
"""A constraint: a predicate over the converted value and the text AWS reports when it fails."""

_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1
_B64_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_INDEX: Final = {c: i for i, c in enumerate(_B64_ALPHABET)}


@dataclass(frozen=True, slots=True)
class Scalar:
    """A compiled scalar shape.

    ``valid`` is None when the shape has no constraints; ``failures(value)`` lists the texts
    of the constraints a converted value breaks, in the order AWS reports them; ``texts``
    lists every constraint in the order AWS prints them inside ``[...]`` for list members
    and map keys/values; ``render(value)`` is the value as AWS echoes it, or None when it
    must not be echoed (blobs, sensitive shapes, integers outside Java's int range).
    """

    convert: Convert
    valid: Callable[[Any], bool] | None
    failures: Callable[[Any], list[str]]
    texts: tuple[str, ...]
    render: Callable[[Any], str | None]


def type_error(value: Any, target: str) -> KmsError:
    """The SerializationException AWS returns when ``value`` cannot become ``target``."""
    if isinstance(value, dict):
        return SerializationException("Start of structure or map found where not expected.")
    if isinstance(value, list):
        return SerializationException("Start of list found where not expected")
    if value is True:
        token = "TRUE_VALUE"
    elif value is False:
        token = "FALSE_VALUE"
    elif isinstance(value, str):
        token = "STRING_VALUE"
    else:
        token = "NUMBER_VALUE"
    return SerializationException(f"{token} can not be converted to {target}")


def _to_string(value: Any, path: str) -> str:
    if type(value) is str:
        return value
    raise type_error(value, "a String")


def _to_boolean(value: Any, path: str) -> bool:
    if type(value) is bool:
        return value
    raise type_error(value, "a Boolean")


def _integer_converter(target: str) -> Convert:
    def convert(value: Any, path: str) -> int:
        kind = type(value)
        if kind is int:
            return value  # type: ignore[no-any-return]
        if kind is float:
            # AWS truncates fractions silently; a fraction here is a caller bug, so refuse it.
            if value.is_integer():
                return int(value)
            raise SerializationException(
                f"Value '{value}' at '{path}' can not be converted to {target}: "
                "it has a fractional part"
            )
        raise type_error(value, target)

    return convert


def _to_double(value: Any, path: str) -> float:
    if type(value) is int or type(value) is float:
        return float(value)
    raise type_error(value, "a Double")


def _to_timestamp(value: Any, path: str) -> datetime:
    # The JSON protocol sends timestamps as epoch seconds (botocore: 'unixtimestamp').
    if type(value) is int or type(value) is float:
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise SerializationException(
                f"Value '{value}' at '{path}' is not a valid timestamp"
            ) from None
    raise type_error(value, "milliseconds since epoch")


def _blob_error(path: str, reason: str) -> KmsError:
    return SerializationException(f"Value at '{path}' can not be converted to a Blob: {reason}")


def _to_blob(value: Any, path: str) -> bytes:
    if type(value) is not str:
        raise type_error(value, "a Blob")
    size = len(value)
    if size % 4:
        raise _blob_error(
            path, f"Base64 encoded length is expected a multiple of 4 bytes but found: {size}"
        )
    try:
        data = binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise _blob_error(path, "Invalid Base64 character") from None
    # AWS (and RFC 4648 section 3.5) refuse a final character whose unused bits are not 0.
    if size and value[-1] == "=":
        last, unused = (value[-3], 0x0F) if value[-2] == "=" else (value[-2], 0x03)
        if _B64_INDEX[last] & unused:
            raise _blob_error(path, "Invalid last non-pad Base64 character dectected")
    return data


def _identity_render(value: Any) -> str | None:
    return str(value)


def _boolean_render(value: Any) -> str | None:
    return "true" if value else "false"


def _never_render(value: Any) -> str | None:
    return None


def _integer_render(value: Any) -> str | None:
    # AWS reads integers as Java ints; one outside that range is reported without its value.
    return str(value) if _INT32_MIN <= value <= _INT32_MAX else None


_CONVERTERS: Final[Mapping[str, Convert]] = {
    "string": _to_string,
    "boolean": _to_boolean,
    "integer": _integer_converter("an Integer"),
    "long": _integer_converter("a Long"),
    "double": _to_double,
    "float": _to_double,
    "timestamp": _to_timestamp,
    "blob": _to_blob,
}


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a model (Java) regex for ``fullmatch``, as Java's ``Matcher.matches`` uses it.

    ``re.ASCII`` gives ``\\w``, ``\\d`` and ``\\s`` their Java (ASCII-only) meaning.
    """
    return re.compile(pattern, re.ASCII)


# The order in which AWS lists an enum's values in "Member must satisfy enum value set",
# where a real AWS message shows it (AWS's order is its own, not the model's), by shape.
# Used only while the model's set of values is the same as the recorded one; any other
# enum, or one the model has grown since, is listed in the model's order.
AWS_ENUM_ORDERS: Final[Mapping[str, tuple[str, ...]]] = {
    # Member macAlgorithm (GenerateMac, VerifyMac); recorded against AWS in LocalStack's
    # snapshots test_invalid_generate_mac[HMAC_256-INVALID] and
    # test_invalid_verify_mac[HMAC_256-INVALID-...] (tests/aws/services/kms/test_kms.snapshot.json).
    "MacAlgorithmSpec": ("HMAC_SHA_384", "HMAC_SHA_256", "HMAC_SHA_224", "HMAC_SHA_512"),
}


def enum_order(name: str, values: list[str]) -> list[str]:
    """The values of enum shape ``name`` in the order AWS lists them (``AWS_ENUM_ORDERS``
    when it holds exactly these values, else the model's order)."""
    recorded = AWS_ENUM_ORDERS.get(name)
    if recorded is not None and sorted(recorded) == sorted(values):
        return list(recorded)
    return values


def compile_scalar(shape: Mapping[str, Any], name: str = "") -> Scalar:
    """Compile a string, blob, boolean, number or timestamp shape of the service model
    (``name`` is the shape's, for AWS's order of an enum's values)."""
    kind = shape["type"]
    lo: int | None = shape.get("min")
    hi: int | None = shape.get("max")
    pattern: Check | None = None
    lower: Check | None = None
    upper: Check | None = None
    if kind in ("string", "blob"):
        if "pattern" in shape and kind == "string":
            regex = compile_pattern(shape["pattern"])
            pattern = (
                lambda v: regex.fullmatch(v) is not None,
                f"Member must satisfy regular expression pattern: {shape['pattern']}",
            )
        if lo is not None:
            min_len = lo
            lower = (
                lambda v: len(v) >= min_len,
                f"Member must have length greater than or equal to {lo}",
            )
        if hi is not None:
            max_len = hi
            upper = (
                lambda v: len(v) <= max_len,
                f"Member must have length less than or equal to {hi}",
            )
    elif kind in ("integer", "long"):
        if lo is not None:
            min_value = lo
            lower = (
                lambda v: v >= min_value,
                f"Member must have value greater than or equal to {lo}",
            )
        if hi is not None:
            max_value = hi
            upper = (lambda v: v <= max_value, f"Member must have value less than or equal to {hi}")
    # One error each, in this order (AWS: pattern before length); inside "[...]" AWS lists
    # the upper bound, then the lower bound, then the pattern.
    checks = [check for check in (pattern, lower, upper) if check is not None]
    bracket = [check[1] for check in (upper, lower, pattern) if check is not None]
    if "enum" in shape:
        allowed = frozenset(shape["enum"])
        listed = ", ".join(enum_order(name, list(shape["enum"])))
        text = f"Member must satisfy enum value set: [{listed}]"
        checks.append((lambda v: v in allowed, text))
        bracket.append(text)

    if kind == "blob" or shape.get("sensitive"):
        render = _never_render
    elif kind in ("integer", "long"):
        render = _integer_render
    elif kind == "boolean":
        render = _boolean_render
    else:
        render = _identity_render
    valid = _fuse(checks, lo, hi, kind)
    return Scalar(_CONVERTERS[kind], valid, _failures(checks), tuple(bracket), render)


def _fuse(
    checks: list[Check], lo: int | None, hi: int | None, kind: str
) -> Callable[[Any], bool] | None:
    """One predicate for the fast path: True when every constraint holds."""
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0][0]
    if len(checks) == 2 and lo is not None and hi is not None:
        # The common case, a length or value range and nothing else, in one comparison chain.
        low, high = lo, hi
        if kind in ("string", "blob"):
            return lambda v: low <= len(v) <= high
        return lambda v: low <= v <= high
    predicates = tuple(predicate for predicate, _ in checks)

    def valid(value: Any) -> bool:
        return all(predicate(value) for predicate in predicates)

    return valid


def _failures(checks: list[Check]) -> Callable[[Any], list[str]]:
    pairs = tuple(checks)

    def failures(value: Any) -> list[str]:
        return [text for predicate, text in pairs if not predicate(value)]

    return failures
