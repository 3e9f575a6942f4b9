"""The key uses a process has seen and not yet written to the database (GetKeyLastUsage).

Written on the event loop after each successful cryptographic request, with no lock and no
database write: a dict of key ARN -> newest use. The flush job takes the dict (on the loop
too, so no use is noted into a dict being written) and writes it in one statement that keeps
the newest use of each key whichever process or node writes last."""

from __future__ import annotations

from strongroom.domain.models import KeyUse


class UsageTracker:
    """Each key's newest use seen by this process and not yet in the database."""

    __slots__ = ("_flushing", "_pending")

    def __init__(self) -> None:
        self._pending: dict[str, KeyUse] = {}
        self._flushing: dict[str, KeyUse] = {}  # taken, being written

    def note(self, key_arn: str, use: KeyUse) -> None:
        """Remember ``use`` as ``key_arn``'s newest use (call it on the event loop)."""
        self._pending[key_arn] = use

    def newest(self, key_arn: str) -> KeyUse | None:
        """This process's newest use of ``key_arn`` not yet known to be in the database."""
        return self._pending.get(key_arn) or self._flushing.get(key_arn)

    def take(self) -> dict[str, KeyUse]:
        """The uses to write now (call it on the event loop); they stay readable through
        ``newest`` until ``written``."""
        self._flushing, self._pending = {**self._flushing, **self._pending}, {}
        return self._flushing

    def written(self, batch: dict[str, KeyUse]) -> None:
        """``batch`` (from ``take``) is in the database."""
        if self._flushing is batch:
            self._flushing = {}
