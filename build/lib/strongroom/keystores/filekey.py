"""The zero-setup root key: 32 random bytes in a file of mode 0600."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.wrap import unwrap, wrap
from strongroom.domain.errors import KeyStoreError

_SIZE = 32


class FileRootKey:
    """A root key kept in a file; created on first use with mode 0600."""

    def __init__(self, path: Path) -> None:
        self._aead = AESGCM(_load_or_create(path))

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        return wrap(self._aead, secret, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        return unwrap(self._aead, wrapped, aad)


def _load(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) != _SIZE:
        raise KeyStoreError(f"root key file {path} is not {_SIZE} bytes")
    if path.stat().st_mode & 0o077:
        raise KeyStoreError(f"root key file {path} must not be readable by others (chmod 600)")
    return data


def _load_or_create(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load(path)
    data = os.urandom(_SIZE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return data
