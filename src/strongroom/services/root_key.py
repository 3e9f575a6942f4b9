"""The root key a database is wrapped under: checked on every start, recorded on the first.

The database keeps the root key's key check value (``RootKey.check_value``), never the key.
A database made before the value was recorded gets it on its next start, but only once the
root key has unwrapped a secret the database holds: a root key that does not match is
caught, not recorded."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from strongroom.crypto.wrap import material_aad
from strongroom.domain.errors import KeyStoreError
from strongroom.keystores.base import RootKey
from strongroom.services.identities import secret_aad
from strongroom.storage.ports import Store, WrappedSample


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
