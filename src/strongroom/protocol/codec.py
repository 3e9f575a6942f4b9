"""The AWS JSON 1.1 codec of one operation: request body -> validated members, result -> body."""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from strongroom.domain.errors import KmsError, SerializationException, ValidationException
from strongroom.domain.secrets import KeyBytes
from strongroom.protocol._shapes import Validate

MAX_REPORTED_ERRORS: Final = 10
"""AWS lists at most this many validation errors in one message (as dynalite observed)."""


class OperationCodec:
    """Decodes the request and encodes the result of one operation of the service model."""

    __slots__ = ("_validate", "name")

    def __init__(self, name: str, validate: Validate | None) -> None:
        """``validate`` is the compiled input shape, or None for an operation without input."""
        self.name = name
        self._validate = validate

    def __repr__(self) -> str:
        return f"OperationCodec({self.name!r})"

    def decode(self, body: bytes) -> dict[str, Any]:
        """Parse and check a JSON request body; return its members by their AWS names.

        An empty body is ``{}``. Blobs come back as bytes, timestamps as aware UTC datetimes,
        everything else as JSON types; unknown and null members are dropped, as AWS does.

        Raises SerializationException for a body that is not a JSON object, a member of the
        wrong JSON type or bad base64 (AWS stops at the first of these), and
        ValidationException listing every broken constraint in AWS's words, e.g.
        ``1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy
        constraint: Member must have value less than or equal to 1024``.
        """
        if body:
            try:
                request = orjson.loads(body)
            except orjson.JSONDecodeError:
                # AWS answers a malformed body with a bare SerializationException.
                raise SerializationException("The request body is not valid JSON") from None
        else:
            request = {}
        if type(request) is not dict:
            if type(request) is list:
                raise SerializationException("Start of list found where not expected")
            raise SerializationException("The request body must be a JSON object")
        if self._validate is None:
            return {}
        errors: list[str] = []
        members: dict[str, Any] = self._validate(request, "", errors)
        if errors:
            raise ValidationException(validation_message(errors))
        return members

    def encode(self, result: Mapping[str, Any]) -> bytes:
        """Serialise an operation result (AWS member names) to a JSON body.

        bytes (and ``KeyBytes``) become base64 text, datetimes epoch seconds (a JSON number,
        as AWS JSON timestamps are; a naive datetime is taken as UTC) and None members are
        left out, at any depth. Enums serialise as their values. Raises TypeError (orjson's
        JSONEncodeError) for any other type.
        """
        return orjson.dumps(_to_wire(result))


def validation_message(errors: list[str]) -> str:
    """``N validation error(s) detected: <error>; <error>``, at most ten errors listed."""
    shown = errors[:MAX_REPORTED_ERRORS]
    plural = "s" if len(shown) > 1 else ""
    return f"{len(shown)} validation error{plural} detected: " + "; ".join(shown)


def encode_error(error: KmsError) -> bytes:
    """The JSON body of an error reply: ``{"__type": <AWS code>, "message": <text>}``, or
    ``{"__type": <AWS code>}`` when the error has no text: AWS leaves the member out then
    (a wrong signature, MAC or encryption context)."""
    if error.message:
        return orjson.dumps({"__type": error.code, "message": error.message})
    return orjson.dumps({"__type": error.code})


_PLAIN: Final = frozenset({str, int, float, bool})


def _to_wire(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:  # the usual map, without the Mapping ABC's check
        return {
            k: v if type(v) in _PLAIN else _to_wire(v) for k, v in value.items() if v is not None
        }
    if kind is bytes or kind is bytearray or kind is memoryview:
        return binascii.b2a_base64(value, newline=False).decode("ascii")
    if kind is KeyBytes:
        return binascii.b2a_base64(value.value, newline=False).decode("ascii")
    if isinstance(value, str | int | float):  # enums: orjson writes their values
        return value
    if isinstance(value, Mapping):
        return {k: _to_wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if isinstance(value, (list, tuple)):
        return [_to_wire(v) for v in value]
    return value
