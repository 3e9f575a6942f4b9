"""Several root keys as one: wrap under the active key, unwrap under the key a value names.

A database is wrapped under one root key, except while a migration (file root to a token)
or a rotation (one token key to another) re-wraps it: then some values are under the old
key and some under the new. A 0x02 wrapped value names its root key by id
(``crypto/wrap.py``); a 0x01 value is under the file root key. The ring is the ``RootKey``
the services use (``core.root_key``); the server swaps its keys when the database's root
key registry changes (``services/root_key.py``), without a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from strongroom.crypto.wrap import key_id, wrapped_key_id
from strongroom.domain.errors import KeyStoreError
from strongroom.keystores.base import RootKey


class RootKeyRing:
    """The ``RootKey`` of a server: ``active`` wraps; every key of the ring unwraps what it
    wrapped. ``file_key`` is the key of 0x01 values (the file root), if the ring has one."""

    def __init__(
        self, active: RootKey, others: Iterable[RootKey] = (), file_key: RootKey | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._set(active, others, file_key)
        # Called when a value names a key the ring does not have (a migration registered it
        # since the last refresh): it refreshes the ring and says whether anything changed.
        self.on_miss: Callable[[], bool] | None = None

    def _set(self, active: RootKey, others: Iterable[RootKey], file_key: RootKey | None) -> None:
        by_id = {key_id(k.check_value()): k for k in (active, *others)}
        with self._lock:
            self._active, self._by_id, self._file_key = active, by_id, file_key
            self._refused: str | None = None

    def refuse_wraps(self, reason: str) -> None:
        """Wrap nothing until the next ``replace``: the database's active root key is not
        one this process could open, and a secret wrapped under the key it holds would be
        under a key that is being retired. Unwraps go on."""
        with self._lock:
            self._refused = reason

    def replace(
        self, active: RootKey, others: Iterable[RootKey] = (), file_key: RootKey | None = None
    ) -> None:
        """Swap the ring's keys (the registry changed); wraps and unwraps under way finish
        with the keys they started with."""
        self._set(active, others, file_key)

    @property
    def active(self) -> RootKey:
        return self._active

    @property
    def file_key(self) -> RootKey | None:
        return self._file_key

    def members(self) -> list[RootKey]:
        """Every key of the ring, the active one first."""
        with self._lock:
            rest = [k for k in self._by_id.values() if k is not self._active]
            return [self._active, *rest]

    def has(self, check_value: bytes) -> bool:
        with self._lock:
            return key_id(check_value) in self._by_id

    def key_for(self, wrapped: bytes) -> RootKey:
        """The key that unwraps ``wrapped`` (after one ``on_miss`` refresh if need be);
        KeyStoreError when the ring has none."""
        kid = wrapped_key_id(wrapped)
        found = self._find(kid)
        if found is None and self.on_miss is not None and self.on_miss():
            found = self._find(kid)
        if found is None:
            if kid is None:
                raise KeyStoreError("wrapped value is under the file root key, which is retired")
            raise KeyStoreError(f"wrapped value is under root key {kid.hex()}, not open here")
        return found

    def _find(self, kid: bytes | None) -> RootKey | None:
        with self._lock:
            return self._file_key if kid is None else self._by_id.get(kid)

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        refused = self._refused
        if refused is not None:
            raise KeyStoreError(refused)
        return self._active.wrap(secret, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        return self.key_for(wrapped).unwrap(wrapped, aad)

    def check_value(self) -> bytes:
        return self._active.check_value()
