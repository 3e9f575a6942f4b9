"""Per-process caches of key records, alias targets, the grants of each key, and the tags
and alias names of keys that policy conditions ask about (``services.facts``). Unwrapped key
material is each key store's own (``keystores``): every invalidation here reaches the
stores' caches too (``add_listener``).

The hot path (Encrypt, Decrypt, GenerateDataKey, Sign, GenerateMac, ...) reads only from
here in steady state. A write in this process drops the entries it changed at once; writes made by
other processes or nodes arrive through the change feed (``changes`` table), which the
server polls, so a change reaches every process within one poll interval.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol

from strongroom.authz.grants import KeyGrants
from strongroom.domain.models import Key

AliasKey = tuple[str, str, str]  # account, region, alias name


class CacheListener(Protocol):
    """Keeps something per key that must go when the key cache forgets the key (the key
    stores' unwrapped material: ``keystores.base.KeyStores``)."""

    def forget(self, arn: str) -> None: ...

    def forget_all(self) -> None: ...


class KeyCache:
    def __init__(self, max_entries: int = 100_000) -> None:
        self._keys: dict[str, Key] = {}
        self._aliases: dict[AliasKey, str] = {}
        self._replicas: dict[str, tuple[str, ...]] = {}
        self._grants: dict[str, KeyGrants] = {}
        self._material_ids: dict[str, dict[int, str]] = {}
        self._tags: dict[str, Mapping[str, str]] = {}
        self._alias_names: dict[str, tuple[str, ...]] = {}
        self._generation = 0  # counts invalidations, so a read that raced one is not kept
        self._max = max_entries
        self._lock = threading.Lock()
        self._listeners: list[CacheListener] = []
        self.hits = 0  # key lookups answered here
        self.misses = 0  # key lookups that found nothing (the caller reads the database)

    def add_listener(self, listener: CacheListener) -> None:
        """Call ``listener`` on every ``invalidate`` and ``clear``, after this cache's own."""
        self._listeners.append(listener)

    def key(self, arn: str) -> Key | None:
        key = self._keys.get(arn)
        if key is None:  # counted for the metrics, without a lock: a lost count is harmless
            self.misses += 1
        else:
            self.hits += 1
        return key

    def put_key(self, key: Key, generation: int) -> None:
        """Keep a key record read at ``generation``, unless an invalidation came in meanwhile
        (the record may predate the change that invalidation announced)."""
        with self._lock:
            if generation != self._generation:
                return
            if len(self._keys) >= self._max:
                self._keys.clear()
            self._keys[key.arn] = key

    def alias_target(self, alias: AliasKey) -> str | None:
        return self._aliases.get(alias)

    def put_alias(self, alias: AliasKey, key_id: str) -> None:
        if len(self._aliases) >= self._max:
            self.clear()
        self._aliases[alias] = key_id

    def replica_regions(self, arn: str) -> tuple[str, ...] | None:
        """The Regions of the replicas in a multi-Region key's set, by the key's ARN."""
        return self._replicas.get(arn)

    def put_replica_regions(self, arn: str, regions: tuple[str, ...]) -> None:
        if len(self._replicas) >= self._max:
            self.clear()
        self._replicas[arn] = regions

    def grants(self, arn: str) -> KeyGrants | None:
        """The live grants of the key ``arn``, as last read."""
        return self._grants.get(arn)

    def put_grants(self, arn: str, grants: KeyGrants) -> None:
        if len(self._grants) >= self._max:
            self.clear()
        self._grants[arn] = grants

    def material_id(self, arn: str, version: int) -> str | None:
        """The KeyMaterialId of a material version, when this process has looked it up."""
        versions = self._material_ids.get(arn)
        return None if versions is None else versions.get(version)

    def put_material_id(self, arn: str, version: int, material_id: str) -> None:
        if len(self._material_ids) >= self._max:
            self.clear()
        self._material_ids.setdefault(arn, {})[version] = material_id

    @property
    def generation(self) -> int:
        """Read before loading something to ``put_tags``/``put_alias_names`` it afterwards."""
        return self._generation

    def tags(self, arn: str) -> Mapping[str, str] | None:
        """A key's tags (tag key → value), when cached."""
        return self._tags.get(arn)

    def put_tags(self, arn: str, tags: Mapping[str, str], generation: int) -> None:
        """Keep tags loaded at ``generation``, unless an invalidation came in meanwhile."""
        with self._lock:
            if generation != self._generation:
                return
            if len(self._tags) >= self._max:
                self._tags.clear()
            self._tags[arn] = tags

    def alias_names(self, arn: str) -> tuple[str, ...] | None:
        """The names of the aliases that point at a key, when cached."""
        return self._alias_names.get(arn)

    def put_alias_names(self, arn: str, names: tuple[str, ...], generation: int) -> None:
        """Keep alias names loaded at ``generation``, as ``put_tags``."""
        with self._lock:
            if generation != self._generation:
                return
            if len(self._alias_names) >= self._max:
                self._alias_names.clear()
            self._alias_names[arn] = names

    def invalidate(self, arn: str) -> None:
        """Forget a key (its record, related keys, grants, material ids, tags and alias
        names, and through the listeners its material) or an alias (by its ARN)."""
        with self._lock:
            self._generation += 1
            self._keys.pop(arn, None)
            self._replicas.pop(arn, None)
            self._grants.pop(arn, None)
            self._material_ids.pop(arn, None)
            self._tags.pop(arn, None)
            self._alias_names.pop(arn, None)
            if ":alias/" in arn:
                _, _, _, region, account, resource = arn.split(":", 5)
                self._aliases.pop((account, region, resource), None)
                # The change names the alias, not the keys it left or joined: every key's
                # alias names are read anew (aliases change rarely).
                self._alias_names.clear()
        for listener in self._listeners:
            listener.forget(arn)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._keys.clear()
            self._aliases.clear()
            self._replicas.clear()
            self._grants.clear()
            self._material_ids.clear()
            self._tags.clear()
            self._alias_names.clear()
        for listener in self._listeners:
            listener.forget_all()
