"""In-memory doubles of a root key and of the storage a key store keeps wrapped material in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from strongroom.domain.errors import KeyStoreError
from strongroom.keystores.base import KeyStores
from strongroom.keystores.software import SoftwareKeyStore
from strongroom.services.cache import KeyCache
from strongroom.services.core import Core


class FakeRootKey:
    """Reversible and AAD-checking, enough to see that material is stored wrapped."""

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        return b"W" + aad + b"|" + secret[::-1]

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        head, _, body = wrapped.partition(b"|")
        if head != b"W" + aad:
            raise KeyStoreError("AAD mismatch")
        return body[::-1]


class FakeMaterial:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def insert(self, arn: str, version: int, wrapped: bytes, now: datetime) -> None:
        self.store.rows[(arn, version)] = wrapped

    def get(self, arn: str, version: int) -> bytes | None:
        self.store.reads += 1
        self.store.during_read()
        return self.store.rows.get((arn, version))

    def delete(self, arn: str, version: int) -> None:
        self.store.rows.pop((arn, version), None)


class FakeStore:
    """Wrapped material in memory; the store is its own transaction. ``during_read`` runs
    inside every read of a row (to make a change race it)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], bytes] = {}
        self.reads = 0
        self.material = FakeMaterial(self)
        self.during_read: Callable[[], None] = lambda: None

    @contextmanager
    def transaction(self) -> Iterator[FakeStore]:
        yield self

    read = transaction


def software_core() -> tuple[Core, FakeStore, SoftwareKeyStore]:
    """A core whose key stores are a software store over a ``FakeStore``."""
    store, root_key = FakeStore(), FakeRootKey()
    software = SoftwareKeyStore(store, root_key)  # type: ignore[arg-type]
    core = Core(
        store=store,  # type: ignore[arg-type]
        root_key=root_key,  # type: ignore[arg-type]
        cache=KeyCache(),
        keystores=KeyStores(software),
    )
    return core, store, software
