"""The symmetric ciphertext blob: self-describing, versioned, AES-256-GCM (run by the key's
store: this module knows the format, not the key).

Layout (integers unsigned big-endian)::

    offset  size  field
    0       1     format: 0x01 (material in the software store), 0x02 (material in
                  a custom key store's token; the same layout, the key's token runs GCM)
                  or 0x03 (a key of an external key store: the same header, and what
                  follows it is the key's store's own, ``keystores.external``)
    1       12    account id of the key, ASCII digits
    13      1     key id length n (1..64)
    14      n     key id, ASCII (a UUID or ``mrk-`` + 32 hex digits)
    14+n    4     key material version (the rotation generation, from 1)
    18+n    12    GCM nonce, never repeated under a key (see ``_next_nonce``)
    30+n    m     ciphertext, as long as the plaintext
    30+n+m  16    GCM tag

The AAD is the header (bytes 0 .. 30+n) followed by the canonical encryption context
(``crypto.context``), so no header field and no context pair can change unnoticed.
The format byte records which kind of store made a blob, so Decrypt takes the right path
and a blob that claims the other kind is refused (``check_format``); it is part of the
header, hence of the AAD. Software blobs are byte for byte as they always were
(``tests/vectors/blob_v1.json``).

A blob names its key (account and key id; the Region is the request's, so a
multi-Region replica decrypts what its primary encrypted) and material version, which
lets Decrypt find both without the caller naming the key (AWS Encrypt documentation:
"KMS stores this information in the ciphertext blob").
"""

from __future__ import annotations

import functools
import itertools
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

from strongroom.domain.errors import InvalidCiphertextException

FORMAT_V1 = 1
FORMAT_TOKEN = 2
"""A blob whose key's material is in a custom key store's token (AWS_CLOUDHSM)."""
FORMAT_EXTERNAL = 3
"""A blob of a key in an external key store: after the header, the GCM ciphertext and tag
made under the key's own material, encrypted again by the external key through the
store's proxy (double encryption); its layout is ``keystores.external``'s."""
_FORMATS = frozenset({FORMAT_V1, FORMAT_TOKEN, FORMAT_EXTERNAL})
NONCE_SIZE = 12
TAG_SIZE = 16
_VERSION = struct.Struct(">I")
_MAX_KEY_ID = 64
_ACCOUNT_SIZE = 12
_KEY_ID_AT = 2 + _ACCOUNT_SIZE


# GCM nonces: a 32-bit field and a 64-bit counter, both drawn from os.urandom when the process
# starts (and again in a forked child), then the counter counts up by one per blob.
#
# Why this is safe: GCM needs every (key, nonce) pair to be used once (NIST SP 800-38D,
# section 8). Within one process the counter makes the nonces distinct by construction, as
# the deterministic construction of section 8.2.1 does with a fixed field and an invocation
# counter (it wraps only after 2^64 blobs). A process cannot know the other processes that
# share a key (workers, nodes, restarts over the key's life), so it does not pick its fixed
# field from a registry but starts at 96 random bits: two processes collide only if they
# draw the same 32-bit field and their counter runs overlap, at most (n1 + n2) / 2^96 for
# runs of n1 and n2 blobs, so P processes making q blobs in all collide with probability
# below P * q / 2^96, never more than the q^2 / 2^97 of a fresh random 96-bit nonce per blob
# (section 8.2.2) as long as a process makes two blobs or more. A counter started at zero
# would not do: two of 2^16 process starts share a 32-bit field with probability ~1/2, and
# their first nonces would then be equal. A forked child would repeat its parent's counter,
# hence the re-seed after fork. Compared with os.urandom per blob, this saves a system call
# per Encrypt / GenerateDataKey / ReEncrypt.
_MASK64 = (1 << 64) - 1


def _seed_nonces() -> None:
    global _nonce_field, _nonce_counter
    _nonce_field = os.urandom(4)
    _nonce_counter = itertools.count(int.from_bytes(os.urandom(8), "big"))


def _next_nonce() -> bytes:
    """A 12-byte GCM nonce this process has not used before (``next`` on an itertools
    counter is atomic under the GIL, so threads never share a value)."""
    return _nonce_field + (next(_nonce_counter) & _MASK64).to_bytes(8, "big")


_nonce_field = b""
_nonce_counter = itertools.count()
_seed_nonces()
os.register_at_fork(after_in_child=_seed_nonces)


@dataclass(frozen=True, slots=True)
class SymmetricBlob:
    format: int  # FORMAT_V1 or FORMAT_TOKEN
    account: str
    key_id: str
    material_version: int
    header: bytes  # bytes 0 .. 30+n, the AAD prefix
    nonce: bytes
    sealed: bytes  # ciphertext followed by the tag (format 0x03: the external store's layout)


def parse_blob(blob: bytes) -> SymmetricBlob:
    """Split a blob into its fields; raises InvalidCiphertextException when it is not one."""
    if len(blob) < _KEY_ID_AT or blob[0] not in _FORMATS:
        raise InvalidCiphertextException()
    n = blob[_KEY_ID_AT - 1]
    head_end = _KEY_ID_AT + n + 4 + NONCE_SIZE
    if not 0 < n <= _MAX_KEY_ID or len(blob) < head_end + TAG_SIZE:
        raise InvalidCiphertextException()
    try:
        account = blob[1 : _KEY_ID_AT - 1].decode("ascii")
        key_id = blob[_KEY_ID_AT : _KEY_ID_AT + n].decode("ascii")
    except UnicodeDecodeError:
        raise InvalidCiphertextException() from None
    (version,) = _VERSION.unpack_from(blob, _KEY_ID_AT + n)
    return SymmetricBlob(
        format=blob[0],
        account=account,
        key_id=key_id,
        material_version=version,
        header=blob[:head_end],
        nonce=blob[head_end - NONCE_SIZE : head_end],
        sealed=blob[head_end:],
    )


Seal = Callable[[bytes, bytes, bytes], bytes]
"""AES-256-GCM under a key's material: (nonce, plaintext, aad) -> ciphertext || tag. The
key's store runs it (``keystores.base.KeyStore.encrypt``)."""

Open = Callable[[bytes, bytes, bytes], bytes]
"""The inverse of ``Seal``: (nonce, ciphertext || tag, aad) -> plaintext; raises
InvalidCiphertextException, with no detail, when the tag does not verify
(``keystores.base.KeyStore.decrypt``)."""


def seal(
    encrypt: Seal,
    account: str,
    key_id: str,
    material_version: int,
    plaintext: bytes,
    context_aad: bytes,
    blob_format: int = FORMAT_V1,
) -> bytes:
    """A new blob of ``plaintext``: a fresh nonce and the header, then ``encrypt`` of the
    plaintext with that nonce and the header and ``context_aad`` as AAD. ``blob_format``
    says which kind of store holds the key's material (``FORMAT_TOKEN``: a token)."""
    nonce = _next_nonce()
    header = _header_head(blob_format, account, key_id, material_version) + nonce
    return header + encrypt(nonce, plaintext, header + context_aad)


@functools.lru_cache(maxsize=4096)
def _header_head(blob_format: int, account: str, key_id: str, material_version: int) -> bytes:
    """The header up to the nonce: the same for every blob of a key's version, so made once
    per version in use (a pure function, kept for the 4,096 most recent: ~40 B each)."""
    kid = key_id.encode("ascii")
    acct = account.encode("ascii")
    if len(acct) != _ACCOUNT_SIZE or not 0 < len(kid) <= _MAX_KEY_ID:
        raise ValueError("account must be 12 digits and key id 1..64 characters")
    if blob_format not in _FORMATS:
        raise ValueError(f"blob format must be one of {sorted(_FORMATS)}")
    return b"".join(
        (bytes((blob_format,)), acct, bytes((len(kid),)), kid, _VERSION.pack(material_version))
    )


def open_blob(decrypt: Open, blob: SymmetricBlob, context_aad: bytes) -> bytes:
    """Decrypt a parsed blob with ``decrypt``; any failure is an opaque
    InvalidCiphertextException."""
    return decrypt(blob.nonce, blob.sealed, blob.header + context_aad)


def check_format(blob: SymmetricBlob, expected: int) -> None:
    """InvalidCiphertextException, no detail, when ``blob`` was not made by the kind of store
    that holds its key's material now (a software blob shown to a key in a token, or the
    reverse: it cannot be one of that key's ciphertexts)."""
    if blob.format != expected:
        raise InvalidCiphertextException()
