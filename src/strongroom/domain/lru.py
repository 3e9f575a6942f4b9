"""A bounded map that lets its least recently used entry go first: the one shape of every
per-process cache (key records, grants, unwrapped material, parsed policies, authorization
contexts).

Exact LRU on ``collections.OrderedDict`` (C): a hit moves the entry to the end
(``move_to_end``: about 60 ns more than a plain ``dict.get``, bench/README "Session 9 (issue
17): memory"), a new entry past the bound drops the least recently used one, never the whole
map. Safe to read without a lock under the GIL: a hit whose entry another thread
dropped meanwhile still returns the value it read.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruDict(OrderedDict[K, V]):
    """At most ``max_entries`` entries (0: none are kept), least recently used out first.

    ``hit`` reads and marks an entry used; ``keep`` adds or replaces one and marks it used.
    Plain ``get``/``[]`` read without marking (for callers that only look)."""

    __slots__ = ("max_entries",)

    def __init__(self, max_entries: int) -> None:
        super().__init__()
        if max_entries < 0:
            raise ValueError(f"max_entries must be at least 0, got {max_entries}")
        self.max_entries = max_entries

    def hit(self, key: K) -> V | None:
        """The value of ``key`` (None if absent), now the most recently used."""
        value = self.get(key)
        if value is not None:
            try:  # noqa: SIM105 (a with-block costs more here)
                self.move_to_end(key)
            except KeyError:  # dropped by another thread since the read: the value stands
                pass
        return value

    def keep(self, key: K, value: V) -> None:
        """Add or replace ``key``'s entry as the most recently used; the least recently used
        go while there are more than ``max_entries``."""
        if self.max_entries == 0:
            return
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.max_entries:
            try:
                self.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break
