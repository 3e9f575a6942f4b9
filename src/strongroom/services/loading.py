"""Load a key by ARN through the per-process cache (no alias resolution: see resolve)."""

from __future__ import annotations

from strongroom.domain.enums import KeyState, Origin
from strongroom.domain.errors import NotFoundException
from strongroom.domain.models import Key
from strongroom.keystores.base import leave_loop
from strongroom.services.core import Core


def load_key(core: Core, arn: str) -> Key:
    """The key with this ARN, from the cache or the database; NotFoundException if none."""
    key = core.cache.key(arn)
    if key is None:
        generation = core.cache.generation
        with core.store.read() as tx:
            key = tx.keys.get(arn)
        if key is None:
            raise NotFoundException(f"Key '{arn}' does not exist")
        core.cache.put_key(key, generation)
    if key.custom_key_store_id is not None:
        if key.origin is Origin.EXTERNAL_KEY_STORE:
            # Its operations wait on the store's proxy: off the event loop from the start,
            # before any work that would be done twice (``keystores.base.MustLeaveLoop``).
            leave_loop()
        # Unavailable while its custom key store is not connected: read each time, never
        # cached in the record (the store's connection changes apart from the key).
        return with_availability(core, key)
    return key


def with_availability(core: Core, key: Key, *, probe: bool = False) -> Key:
    """``key`` as it is now: Unavailable while its custom key store is not connected (and,
    with ``probe``, while its token does not answer), unless it is PendingDeletion. Keys of
    the software store are returned as they are (one field read)."""
    if key.custom_key_store_id is None or key.state is KeyState.PENDING_DELETION:
        return key
    if core.keystores.available(key, probe=probe):
        return key
    return key.evolve(state=KeyState.UNAVAILABLE)
