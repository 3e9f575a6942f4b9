"""What policy conditions may ask about a key beyond its record: its tags
(``aws:ResourceTag/<k>``) and the names of the aliases that point at it
(``kms:ResourceAliases``). Read from the database once, then kept in the per-process key
cache, which drops them through the change feed when a tag or an alias changes."""

from __future__ import annotations

from collections.abc import Mapping

from strongroom.domain.models import Key
from strongroom.services.core import Core

# Read every alias of the key: CreateAlias keeps a key to 50 (services.aliases), far below.
_ALIAS_PAGE = 1000


class KeyFacts:
    """``authz.decision.ResourceFacts`` of one key; nothing is read until asked."""

    __slots__ = ("_core", "_key")

    def __init__(self, core: Core, key: Key) -> None:
        self._core = core
        self._key = key

    def tags(self) -> Mapping[str, str]:
        """The key's tags, tag key → value."""
        cache, arn = self._core.cache, self._key.arn
        found = cache.tags(arn)
        if found is None:
            generation = cache.generation
            with self._core.store.read() as tx:
                found = {t.key: t.value for t in tx.tags.list(arn)}
            cache.put_tags(arn, found, generation)
        return found

    def aliases(self) -> tuple[str, ...]:
        """The names (``alias/...``) of the aliases that point at the key."""
        cache, key = self._core.cache, self._key
        found = cache.alias_names(key.arn)
        if found is None:
            generation = cache.generation
            with self._core.store.read() as tx:
                page = tx.aliases.list(
                    key.account, key.region, key_id=key.key_id, after=None, limit=_ALIAS_PAGE
                )
            found = tuple(a.name for a in page)
            cache.put_alias_names(key.arn, found, generation)
        return found
