"""The symmetric ciphertext blob: self-describing, versioned, AES-256-GCM.

Layout (integers unsigned big-endian)::

    offset  size  field
    0       1     format version, 0x01
    1       12    account id of the key, ASCII digits
    13      1     key id length n (1..64)
    14      n     key id, ASCII (a UUID or ``mrk-`` + 32 hex digits)
    14+n    4     key material version (the rotation generation, from 1)
    18+n    12    GCM nonce, random per blob
    30+n    m     ciphertext, as long as the plaintext
    30+n+m  16    GCM tag

The AAD is the header (bytes 0 .. 30+n) followed by the canonical encryption context
(``crypto.context``), so no header field and no context pair can change unnoticed.
A blob names its key (account and key id; the Region is the request's, so a
multi-Region replica decrypts what its primary encrypted) and material version, which
lets Decrypt find both without the caller naming the key (AWS Encrypt documentation:
"KMS stores this information in the ciphertext blob").
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.domain.errors import InvalidCiphertextException

FORMAT_V1 = 1
NONCE_SIZE = 12
TAG_SIZE = 16
_VERSION = struct.Struct(">I")
_MAX_KEY_ID = 64
_ACCOUNT_SIZE = 12
_KEY_ID_AT = 2 + _ACCOUNT_SIZE


@dataclass(frozen=True, slots=True)
class SymmetricBlob:
    account: str
    key_id: str
    material_version: int
    header: bytes  # bytes 0 .. 30+n, the AAD prefix
    nonce: bytes
    sealed: bytes  # ciphertext followed by the tag


def parse_blob(blob: bytes) -> SymmetricBlob:
    """Split a blob into its fields; raises InvalidCiphertextException when it is not one."""
    if len(blob) < _KEY_ID_AT or blob[0] != FORMAT_V1:
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
        account=account,
        key_id=key_id,
        material_version=version,
        header=blob[:head_end],
        nonce=blob[head_end - NONCE_SIZE : head_end],
        sealed=blob[head_end:],
    )


def seal(
    aead: AESGCM,
    account: str,
    key_id: str,
    material_version: int,
    plaintext: bytes,
    context_aad: bytes,
) -> bytes:
    """Encrypt ``plaintext`` with ``aead`` into a new blob with a fresh random nonce."""
    kid = key_id.encode("ascii")
    acct = account.encode("ascii")
    if len(acct) != _ACCOUNT_SIZE or not 0 < len(kid) <= _MAX_KEY_ID:
        raise ValueError("account must be 12 digits and key id 1..64 characters")
    nonce = os.urandom(NONCE_SIZE)
    header = b"".join(
        (
            bytes((FORMAT_V1,)),
            acct,
            bytes((len(kid),)),
            kid,
            _VERSION.pack(material_version),
            nonce,
        )
    )
    return header + aead.encrypt(nonce, plaintext, header + context_aad)


def open_blob(aead: AESGCM, blob: SymmetricBlob, context_aad: bytes) -> bytes:
    """Decrypt a parsed blob; any failure is an opaque InvalidCiphertextException."""
    try:
        return aead.decrypt(blob.nonce, blob.sealed, blob.header + context_aad)
    except InvalidTag:
        raise InvalidCiphertextException() from None
