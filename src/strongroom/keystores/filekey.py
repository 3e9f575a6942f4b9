"""The zero-setup root key: 32 random bytes in a file of mode 0600."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.crypto.wrap import unwrap, wrap
from strongroom.domain.errors import KeyStoreError

_SIZE = 32
# The key check value's key-derivation label and message (version 1).
_CHECK_INFO = b"strongroom root key check value v1"
_CHECK_MESSAGE = b"strongroom root key check"


class FileRootKey:
    """A root key kept in a file of mode 0600; ``FileRootKey.create`` makes a new one."""

    def __init__(self, path: Path) -> None:
        """Load the root key file at ``path``; KeyStoreError when it is missing, not 32
        bytes, or readable by others."""
        key = _load(path)
        self._aead = AESGCM(key)
        self._check = check_value(key)

    @classmethod
    def create(cls, path: Path) -> FileRootKey:
        """Write a new random root key to ``path`` (mode 0600, fsynced) and load it;
        FileExistsError when the file exists: a root key is never overwritten."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(_SIZE))
            f.flush()
            os.fsync(f.fileno())
        return cls(path)

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        return wrap(self._aead, secret, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        return unwrap(self._aead, wrapped, aad)

    def check_value(self) -> bytes:
        return self._check


def check_value(key: bytes) -> bytes:
    """The key check value of a file root key, version 1::

        check_key   = HKDF-SHA256(ikm=key, salt=none, length=32,
                                  info="strongroom root key check value v1")
        check_value = HMAC-SHA256(check_key, "strongroom root key check")  # 32 bytes

    HKDF separates the check key from the key that wraps (RFC 5869 section 3.2: ``info``
    binds the output to its use), so the value that sits in the database in the clear is
    a MAC under a key used for nothing else; it reveals nothing of the root key, and the
    same root key always gives the same value."""
    check_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CHECK_INFO).derive(key)
    mac = hmac.HMAC(check_key, hashes.SHA256())
    mac.update(_CHECK_MESSAGE)
    return mac.finalize()


def _load(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyStoreError(f"root key file {path} does not exist") from None
    if len(data) != _SIZE:
        raise KeyStoreError(f"root key file {path} is not {_SIZE} bytes")
    if path.stat().st_mode & 0o077:
        raise KeyStoreError(f"root key file {path} must not be readable by others (chmod 600)")
    return data
