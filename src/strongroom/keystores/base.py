"""Ports for the root key: where secrets at rest are wrapped and unwrapped."""

from __future__ import annotations

from typing import Protocol


class RootKey(Protocol):
    """Wraps secrets for storage. Implementations: a file (zero setup), later PKCS#11."""

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        """Return ``secret`` encrypted under the root key, bound to ``aad``."""
        ...

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """Return the secret; raises KeyStoreError when it does not unwrap."""
        ...

    def check_value(self) -> bytes:
        """A key check value: 32 bytes that name this root key and reveal nothing of it.
        The database records it, so a server with another root key refuses to start; two
        root keys give the same value only if they are the same key. Each provider defines
        its own construction (an HSM computes it inside the token)."""
        ...
