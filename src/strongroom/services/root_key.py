"""The root key a database is wrapped under: checked on every start, recorded on the first.

The database keeps the root key's key check value (``RootKey.check_value``), never the key.
A database made before the value was recorded gets it on its next start, but only once the
root key has unwrapped a secret the database holds: a root key that does not match is
caught, not recorded."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from strongroom.crypto.wrap import WRAP_V2, key_id, material_aad
from strongroom.domain.errors import KeyStoreError
from strongroom.domain.ids import lock_order
from strongroom.keystores.base import RootKey
from strongroom.keystores.ring import RootKeyRing
from strongroom.services.identities import secret_aad
from strongroom.services.imports import token_aad
from strongroom.services.store_tokens import password_aad
from strongroom.storage.ports import RootKeyEntry, Store, WrappedKind, WrappedRow, WrappedSample


@dataclass(frozen=True, slots=True)
class DatabaseBinding:
    """What a database says of its root key before one is opened."""

    check_value: bytes | None  # None: not recorded (a new database, or one made before)
    in_use: bool  # it has accounts: a server must never make a new root key for it


def database_binding(store: Store) -> DatabaseBinding:
    """The recorded check value and whether the database is in use."""
    with store.transaction() as tx:
        recorded = tx.root_key.check_value()
        in_use = bool(tx.identities.list_accounts())
    return DatabaseBinding(recorded, in_use or recorded is not None)


def bind_root_key(store: Store, root_key: RootKey, now: datetime) -> bytes | None:
    """Check the database is wrapped under ``root_key``; record its check value when none
    is recorded and ``root_key`` unwraps a secret of the database (or it holds none).

    Returns None when the database is wrapped under ``root_key``; otherwise the check value
    it is wrapped under, or b"" when none is recorded and its secrets do not unwrap."""
    mine = root_key.check_value()
    with store.transaction() as tx:
        recorded = tx.root_key.check_value()
        if recorded is None:
            sample = tx.root_key.sample()
            if sample is not None and not _unwraps(root_key, sample):
                return b""
            recorded = tx.root_key.record(mine, now)
    return None if hmac.compare_digest(recorded, mine) else recorded


def _unwraps(root_key: RootKey, sample: WrappedSample) -> bool:
    if sample.kind == "access_key":
        aad = secret_aad(sample.name)
    else:
        aad = material_aad(sample.name, sample.version)
    try:
        root_key.unwrap(sample.wrapped, aad)
    except KeyStoreError:
        return False
    return True


# -- the root key registry, and re-wrapping under another root key --------------------------

NEXT, ACTIVE, RETIRING, RETIRED = "next", "active", "retiring", "retired"
KINDS: tuple[WrappedKind, ...] = (
    "material",
    "access_key",
    "session",
    "import_token",
    "store_password",
)
KIND_NAMES = {
    "material": "key material versions",
    "access_key": "access key secrets",
    "session": "role session secrets",
    "import_token": "import token private keys",
    "store_password": "custom key store passwords and XKS proxy secrets",
}


def row_aad(row: WrappedRow) -> bytes:
    """The AAD a row's secret is wrapped with (as the service that wrote it made it)."""
    if row.kind == "material":
        return material_aad(str(row.names[0]), int(row.names[1]))
    if row.kind in ("access_key", "session"):
        return secret_aad(str(row.names[0]))
    if row.kind == "store_password":
        return password_aad(str(row.names[0]))
    return token_aad(str(row.names[0]), str(row.names[1]))


def wrapped_prefix(root_key: RootKey) -> bytes:
    """How every value wrapped under a token root key begins (format 0x02 and its id)."""
    return bytes((WRAP_V2,)) + key_id(root_key.check_value())


def register_first(store: Store, entry: RootKeyEntry) -> None:
    """Register ``entry`` as the database's root key unless the registry has keys."""
    with store.transaction() as tx:
        if not tx.root_key.registry():
            tx.root_key.register(entry, datetime.now(UTC))


def registry(store: Store) -> list[RootKeyEntry]:
    with store.transaction() as tx:
        return tx.root_key.registry()


def remaining(store: Store, target: RootKey) -> dict[WrappedKind, int]:
    """How many rows of each kind are not wrapped under ``target`` yet."""
    prefix = wrapped_prefix(target)
    with store.transaction() as tx:
        return {kind: tx.root_key.count_not_under(kind, prefix) for kind in KINDS}


Progress = Callable[[WrappedKind, int, int], None]


def rewrap(
    store: Store,
    ring: RootKeyRing,
    progress: Progress,
    *,
    batch: int = 100,
    passes: int = 20,
    pause: float = 0.2,
) -> int:
    """Re-wrap every wrapped secret of the database that is not under the ring's active key
    under it, ``batch`` rows per transaction; returns how many it re-wrapped.

    Each row is replaced compare-and-set: a row a server wrote meanwhile (a new session, a
    rotation) keeps the server's value, and a later pass takes it if it is not under the
    active key. It can be stopped at any point and run again: a row is either under the
    old key or under the new one, and both unwrap. Passes repeat until a pass finds nothing
    left (at most ``passes``); KeyStoreError names a row that does not unwrap."""
    target = ring.active
    prefix = wrapped_prefix(target)
    total = 0
    for _ in range(passes):
        left = remaining(store, target)
        if not any(left.values()):
            return total
        for kind in KINDS:
            if left[kind]:
                total += _rewrap_kind(store, ring, kind, left[kind], prefix, batch, progress)
        time.sleep(pause)
    left = remaining(store, target)
    if any(left.values()):
        raise KeyStoreError(
            f"{sum(left.values())} rows are still not under the new root key after {passes} "
            "passes (servers keep writing under the old one?): run the command again"
        )
    return total


def _in_lock_order(row: WrappedRow) -> tuple[object, ...]:
    """Where ``row`` comes among the rows one transaction replaces. A key's material and
    import tokens go in the order keys are locked (``domain.ids.lock_order``), the order in
    which the deletion job deletes them. The batches are read in primary-key order (ARN,
    Region first); replacing rows in that order deadlocked against the job."""
    if row.kind == "material":
        return (*lock_order(str(row.names[0])), *row.names[1:])
    if row.kind == "import_token":
        return (*lock_order(str(row.names[1])), row.names[0])
    return row.names


def _rewrap_kind(
    store: Store,
    ring: RootKeyRing,
    kind: WrappedKind,
    count: int,
    prefix: bytes,
    batch: int,
    progress: Progress,
) -> int:
    target = ring.active
    after: tuple[str | int, ...] | None = None
    done = 0
    while True:
        with store.transaction() as tx:
            rows = tx.root_key.wrapped_batch(kind, after, prefix, batch)
        if not rows:
            return done
        replaced: list[tuple[WrappedRow, bytes]] = []
        for row in rows:
            aad = row_aad(row)
            try:
                secret = ring.unwrap(row.wrapped, aad)
            except KeyStoreError as exc:
                raise KeyStoreError(f"{kind} {row.names}: {exc}") from None
            replaced.append((row, target.wrap(secret, aad)))
        replaced.sort(key=lambda item: _in_lock_order(item[0]))
        with store.transaction() as tx:
            done += sum(tx.root_key.replace_wrapped(row, new) for row, new in replaced)
        after = rows[-1].names
        progress(kind, done, count)
