"""The bounded map every per-process cache uses: the least recently used entry goes first,
never more than the bound, never the whole map."""

from __future__ import annotations

import pytest

from strongroom.domain.lru import LruDict

pytestmark = pytest.mark.unit


def test_the_most_recently_used_entry_survives_eviction() -> None:
    cache: LruDict[str, int] = LruDict(3)
    for name, value in (("a", 1), ("b", 2), ("c", 3)):
        cache.keep(name, value)
    assert cache.hit("a") == 1  # a is now the most recently used; b the least
    cache.keep("d", 4)
    assert list(cache) == ["c", "a", "d"]
    assert cache.hit("b") is None


def test_the_bound_holds_and_a_full_map_drops_one_entry_not_all() -> None:
    cache: LruDict[int, int] = LruDict(100)
    for i in range(1000):
        cache.keep(i, i)
        assert len(cache) == min(i + 1, 100)
    assert list(cache) == list(range(900, 1000))


def test_replacing_an_entry_makes_it_the_most_recent_without_growing() -> None:
    cache: LruDict[str, int] = LruDict(2)
    cache.keep("a", 1)
    cache.keep("b", 2)
    cache.keep("a", 10)
    cache.keep("c", 3)
    assert dict(cache) == {"a": 10, "c": 3}


def test_a_bound_of_zero_keeps_nothing_and_a_negative_one_is_refused() -> None:
    cache: LruDict[str, int] = LruDict(0)
    cache.keep("a", 1)
    assert len(cache) == 0 and cache.hit("a") is None
    with pytest.raises(ValueError, match="max_entries"):
        LruDict(-1)
