"""Canonical, length-prefixed encoding of an encryption context, used as AAD.

Layout (all integers unsigned big-endian)::

    count        4 bytes   number of pairs
    then, for each pair in ascending order of the UTF-8 bytes of its key:
    key length   4 bytes
    key          UTF-8
    value length 4 bytes
    value        UTF-8

Every part carries its length, so ``{"ab": "c"}`` and ``{"a": "bc"}`` never encode alike
(the concatenation that moto, LocalStack and local-kms use makes them equal). Keys are
case-sensitive and pair order does not matter, as the KMS Developer Guide requires
(Concepts, "Encryption context").
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

_U32 = struct.Struct(">I")
EMPTY = _U32.pack(0)


def encode_context(context: Mapping[str, str] | None) -> bytes:
    """Return the canonical bytes of ``context``; ``None`` and ``{}`` encode alike."""
    if not context:
        return EMPTY
    pairs = sorted((k.encode(), v.encode()) for k, v in context.items())
    parts = [_U32.pack(len(pairs))]
    for key, value in pairs:
        parts += (_U32.pack(len(key)), key, _U32.pack(len(value)), value)
    return b"".join(parts)
