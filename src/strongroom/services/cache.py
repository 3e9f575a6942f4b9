"""Per-process caches of key records, alias targets, the grants of each key, and the tags
and alias names of keys that policy conditions ask about (``services.facts``). Unwrapped key
material is each key store's own (``keystores``): every invalidation here reaches the
stores' caches too (``add_listener``).

Every map is bounded by ``max_entries`` (setting ``key_cache_keys``, 100,000 by default) and
lets its least recently used entry go when full (``domain.lru.LruDict``): the key records
(each with its grants), the alias targets, the replica Regions, the material ids, the tags and
the alias names each hold at most ``max_entries`` entries (keys or aliases). A key record is
kept compact: its account, Region and policy text are shared with every other record that has
the same ones (one default policy text per account, however many keys), and the KeyMaterialId
of generated material, a digest of the ARN and the version, is left out of it: derived on use
(``generated_material_id``), the ids of the ``_DERIVED_IDS`` most recently used keys kept.

The hot path (Encrypt, Decrypt, GenerateDataKey, Sign, GenerateMac, ...) reads only from
here in steady state. A write in this process drops the entries it changed at once; writes made by
other processes or nodes arrive through the change feed (``changes`` table), which the
server polls, so a change reaches every process within one poll interval.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Protocol

from strongroom.authz.grants import NO_GRANTS, KeyGrants
from strongroom.crypto.key_import import generated_material_id, material_id_arn
from strongroom.domain.enums import Origin
from strongroom.domain.lru import LruDict
from strongroom.domain.models import Key

AliasKey = tuple[str, str, str]  # account, region, alias name

_MAX_TEXTS = 10_000  # distinct policy texts shared between the cached key records
# Keys whose derived KeyMaterialId is kept (each ~0.2 kB; deriving one again costs a SHA-256
# of the encoded ARN, a few µs): as many as the ready AES-GCM contexts of the software store.
_DERIVED_IDS = 1_024


class CacheListener(Protocol):
    """Keeps something per key that must go when the key cache forgets the key (the key
    stores' unwrapped material: ``keystores.base.KeyStores``)."""

    def forget(self, arn: str) -> None: ...

    def forget_all(self) -> None: ...


class KeyCache:
    def __init__(self, max_entries: int = 100_000) -> None:
        # A key's record with its grants: one entry, one recency. The entry is the record
        # alone once its grants are read and there are none (most keys: no pair kept, 64 B),
        # else the pair (record, grants), grants None until read.
        self._keys: LruDict[str, Key | tuple[Key, KeyGrants | None]] = LruDict(max_entries)
        self._aliases: LruDict[AliasKey, str] = LruDict(max_entries)
        self._replicas: LruDict[str, tuple[str, ...]] = LruDict(max_entries)
        self._material_ids: LruDict[str, dict[int, str]] = LruDict(max_entries)
        self._tags: LruDict[str, Mapping[str, str]] = LruDict(max_entries)
        self._alias_names: LruDict[str, tuple[str, ...]] = LruDict(max_entries)
        # One copy of each policy text the cached records hold (most keys share a few).
        self._texts: LruDict[str, str] = LruDict(_MAX_TEXTS)
        # The derived KeyMaterialId of a key's version, by the ARN it derives from.
        self._derived: LruDict[str, tuple[int, str]] = LruDict(_DERIVED_IDS)
        self._generation = 0  # counts invalidations, so a read that raced one is not kept
        self._max = max_entries
        self._lock = threading.Lock()
        self._listeners: list[CacheListener] = []
        self.hits = 0  # key lookups answered here
        self.misses = 0  # key lookups that found nothing (the caller reads the database)

    @property
    def max_entries(self) -> int:
        return self._max

    def sizes(self) -> dict[str, int]:
        """The number of entries of each map (for benchmarks and tests)."""
        return {
            "keys": len(self._keys),
            "aliases": len(self._aliases),
            "replicas": len(self._replicas),
            # A snapshot first (one C call): a lock-free hit elsewhere reorders the map.
            "grants": sum(
                1
                for entry in list(self._keys.values())
                if not isinstance(entry, tuple) or entry[1] is not None
            ),
            "material_ids": len(self._material_ids),
            "tags": len(self._tags),
            "alias_names": len(self._alias_names),
            "policy_texts": len(self._texts),
        }

    def add_listener(self, listener: CacheListener) -> None:
        """Call ``listener`` on every ``invalidate`` and ``clear``, after this cache's own."""
        self._listeners.append(listener)

    def holds(self, arn: str) -> bool:
        """Whether a record of ``arn`` is kept (a look only: not marked used, not counted)."""
        return arn in self._keys

    def key(self, arn: str) -> Key | None:
        keys = self._keys
        entry = keys.get(arn)
        if entry is None:  # counted for the metrics, without a lock: a lost count is harmless
            self.misses += 1
            return None
        self.hits += 1
        try:  # noqa: SIM105 (suppress() costs more) LruDict.hit, inlined
            keys.move_to_end(arn)
        except KeyError:  # dropped by another thread since the read
            pass
        return entry[0] if isinstance(entry, tuple) else entry

    def put_key(self, key: Key, generation: int) -> None:
        """Keep a key record read at ``generation``, unless an invalidation came in meanwhile
        (the record may predate the change that invalidation announced)."""
        with self._lock:
            if generation != self._generation:
                return
            kept = self._keys.get(key.arn)  # grants read since no invalidation still hold
            record = self._compact(key)
            if kept is None:
                self._keys.keep(key.arn, (record, None))
            elif isinstance(kept, tuple):
                self._keys.keep(key.arn, (record, kept[1]))
            else:
                self._keys.keep(key.arn, record)

    def _compact(self, key: Key) -> Key:
        """``key`` with its account, Region and policy text shared with the other records,
        and without the KeyMaterialId of generated material (called under the lock).

        A record without it must not be written back: every write reads the key's row anew
        in its own transaction (``tx.keys.get``), never from here."""
        account, region = sys.intern(key.account), sys.intern(key.region)
        policy = self._texts.hit(key.policy)
        if policy is None:
            policy = key.policy
            self._texts.keep(policy, policy)
        material_id = key.current_material_id
        if (
            material_id is not None
            and key.origin is Origin.AWS_KMS
            and material_id == generated_material_id(material_id_arn(key), key.current_version)
        ):
            material_id = None
        if (
            account is key.account
            and region is key.region
            and policy is key.policy
            and material_id is key.current_material_id
        ):
            return key
        return key.evolve(
            account=account, region=region, policy=policy, current_material_id=material_id
        )

    def generated_material_id(self, key: Key, version: int) -> str:
        """The KeyMaterialId of version ``version`` of generated material of ``key`` (origin
        AWS_KMS; a replica's through its primary): ``crypto.key_import``'s digest, kept for
        the most recently used keys."""
        arn = material_id_arn(key)
        kept = self._derived.hit(arn)
        if kept is not None and kept[0] == version:
            return kept[1]
        material_id = generated_material_id(arn, version)
        with self._lock:
            self._derived.keep(arn, (version, material_id))
        return material_id

    def alias_target(self, alias: AliasKey) -> str | None:
        return self._aliases.hit(alias)

    def put_alias(self, alias: AliasKey, key_id: str) -> None:
        self._aliases.keep(alias, key_id)

    def replica_regions(self, arn: str) -> tuple[str, ...] | None:
        """The Regions of the replicas in a multi-Region key's set, by the key's ARN."""
        return self._replicas.hit(arn)

    def put_replica_regions(self, arn: str, regions: tuple[str, ...]) -> None:
        self._replicas.keep(arn, regions)

    def grants(self, arn: str) -> KeyGrants | None:
        """The live grants of the key ``arn``, as last read (kept with its record: the
        request that asks has just read the record, which marked the entry used)."""
        entry = self._keys.get(arn)
        if entry is None:
            return None
        return entry[1] if isinstance(entry, tuple) else NO_GRANTS

    def put_grants(self, arn: str, grants: KeyGrants) -> None:
        """Keep the grants of a key whose record is cached (else nothing is kept: the key
        was invalidated or evicted meanwhile, and its grants are read again with it)."""
        with self._lock:
            entry = self._keys.get(arn)
            if entry is not None:
                record = entry[0] if isinstance(entry, tuple) else entry
                self._keys[arn] = record if grants is NO_GRANTS else (record, grants)

    def material_id(self, arn: str, version: int) -> str | None:
        """The KeyMaterialId of a material version, when this process has looked it up."""
        versions = self._material_ids.hit(arn)
        return None if versions is None else versions.get(version)

    def put_material_id(self, arn: str, version: int, material_id: str) -> None:
        with self._lock:
            versions = self._material_ids.hit(arn)
            if versions is None:
                self._material_ids.keep(arn, {version: material_id})
            else:
                versions[version] = material_id

    @property
    def generation(self) -> int:
        """Read before loading something to ``put_tags``/``put_alias_names`` it afterwards."""
        return self._generation

    def tags(self, arn: str) -> Mapping[str, str] | None:
        """A key's tags (tag key → value), when cached."""
        return self._tags.hit(arn)

    def put_tags(self, arn: str, tags: Mapping[str, str], generation: int) -> None:
        """Keep tags loaded at ``generation``, unless an invalidation came in meanwhile."""
        with self._lock:
            if generation != self._generation:
                return
            self._tags.keep(arn, tags)

    def alias_names(self, arn: str) -> tuple[str, ...] | None:
        """The names of the aliases that point at a key, when cached."""
        return self._alias_names.hit(arn)

    def put_alias_names(self, arn: str, names: tuple[str, ...], generation: int) -> None:
        """Keep alias names loaded at ``generation``, as ``put_tags``."""
        with self._lock:
            if generation != self._generation:
                return
            self._alias_names.keep(arn, names)

    def invalidate(self, arn: str) -> None:
        """Forget a key (its record, related keys, grants, material ids, tags and alias
        names, and through the listeners its material) or an alias (by its ARN)."""
        with self._lock:
            self._generation += 1
            self._keys.pop(arn, None)  # and its grants
            self._replicas.pop(arn, None)
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
            self._material_ids.clear()
            self._tags.clear()
            self._alias_names.clear()
            self._texts.clear()
        for listener in self._listeners:
            listener.forget_all()
