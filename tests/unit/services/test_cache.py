"""The key cache never keeps a record read before an invalidation that came in while it was
being read (another process's change announced meanwhile), and passes every invalidation on
to its listeners (the key stores' material caches)."""

from __future__ import annotations

import pytest

from strongroom.services.cache import KeyCache

from .._keys import ARN, symmetric_key

pytestmark = pytest.mark.unit

KEY = symmetric_key()


def test_a_read_that_raced_an_invalidation_is_not_kept() -> None:
    cache = KeyCache()
    generation = cache.generation  # a request starts reading the key
    cache.invalidate(ARN)  # meanwhile the change feed announces a change of it
    cache.put_key(KEY, generation)
    assert cache.key(ARN) is None
    generation = cache.generation  # read again after the invalidation: kept
    cache.put_key(KEY, generation)
    assert cache.key(ARN) == KEY


class Listener:
    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, arn: str) -> None:
        self.forgotten.append(arn)

    def forget_all(self) -> None:
        self.forgotten.append("*")


def test_invalidations_reach_the_listeners() -> None:
    cache, listener = KeyCache(), Listener()
    cache.add_listener(listener)
    cache.invalidate(ARN)
    cache.clear()
    assert listener.forgotten == [ARN, "*"]
