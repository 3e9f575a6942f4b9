"""Crash safety: kill -9 of the whole server (supervisor and workers) under concurrent
mixed writes loses nothing the server acknowledged, on SQLite and on PostgreSQL, and the
audit trail still verifies (``_crash.py`` runs the rounds; ``tools/crash_rounds.py`` runs
many more)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ._crash import crash_rounds

pytestmark = pytest.mark.compat

THREADS = 6


def test_kill_9_under_mixed_writes_loses_nothing_acknowledged(
    database_url: str | None, tmp_path: Path
) -> None:
    # Two rounds on the same storage: two worker processes, then one (each round starts on
    # what the crash before it left; a start with two workers is the slower one).
    results = crash_rounds(
        tmp_path / "data",
        database_url,
        [2, 1],
        threads=THREADS,
        kill_after=(1.0, 2.0),
        rng=random.Random(),
    )
    for result in results:
        print(result.line())
        assert result.requests > 20, result.line()  # the load really ran before the kill
        assert not result.errors_during_load, result.line()
        assert not result.problems, result.line()
