"""Prometheus metrics (``GET /metrics``, the text format through ``prometheus-client``,
in ``server/exposition.py``).

Recording stays off the hot path's budget: a request adds one to a plain dict entry and one
to a histogram bucket of its operation (``Metrics.observe``, on the loop: no lock), and the
key cache counts its hits and misses itself. prometheus-client's own Counter and Histogram
take a lock and look their labels up on every call; here its collectors only format, at
scrape time, what was counted.

A server of several worker processes answers a scrape from whichever worker the connection
reaches, so every worker writes its counts to ``<data dir>/metrics/<run>/<pid>.json`` once
a second (``Metrics.write``, a job), and the one that answers adds up every worker's file
of this run, its own written afresh. A worker that died and was replaced keeps its file:
counters never go back. ``<run>`` is the supervisor's process id (the process's own with
one worker); runs no longer alive are removed at start. What the database holds (keys by
state, grants, role sessions) is counted at scrape time, off the loop.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["BUCKETS", "DatabaseCounts", "Metrics", "run_directory"]

# Request latency buckets, seconds: an Encrypt takes ~0.1-0.5 ms alone, tens of ms queued.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OK = "none"  # the error_code label of a request that succeeded


class Histogram:
    """Bucket counts (the last one: above every bound) and the sum of one series."""

    __slots__ = ("counts", "total")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.total = 0.0

    def add(self, other: dict[str, Any]) -> None:
        for i, n in enumerate(other["counts"]):
            self.counts[i] += n
        self.total += other["sum"]


class DatabaseCounts:
    """What the database holds, counted at scrape time: keys by state, grants, live role
    sessions."""

    def __init__(self, keys_by_state: dict[str, int], grants: int, sessions: int) -> None:
        self.keys_by_state = keys_by_state
        self.grants = grants
        self.sessions = sessions


class Metrics:
    """The counts of one process, and their exposition with every worker's."""

    def __init__(self, directory: Path | None) -> None:
        """``directory``: where this run's workers write their counts (None: this process
        alone, nothing written)."""
        self._directory = directory
        self._requests: dict[tuple[str, str], int] = {}
        self._latency: dict[str, Histogram] = {}
        self.audit_flush = Histogram(len(BUCKETS) + 1)  # seconds per audit write (group)
        self._cache_counts: tuple[int, int] = (0, 0)

    def observe(self, operation: str, error_code: str | None, seconds: float) -> None:
        """A request of ``operation`` answered after ``seconds`` (on the loop)."""
        series = (operation, error_code or OK)
        self._requests[series] = self._requests.get(series, 0) + 1
        histogram = self._latency.get(operation)
        if histogram is None:
            histogram = self._latency[operation] = Histogram(len(BUCKETS) + 1)
        histogram.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        histogram.total += seconds

    def observe_audit_flush(self, seconds: float) -> None:
        """One write (and sync) of a group of audit events took ``seconds``."""
        self.audit_flush.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.audit_flush.total += seconds

    def note_cache(self, hits: int, misses: int) -> None:
        """The key cache's counts so far (read from it before a write or an exposition)."""
        self._cache_counts = (hits, misses)

    def snapshot(self) -> dict[str, Any]:
        """This process's counts, as JSON-ready data."""
        return {
            "requests": [[op, code, n] for (op, code), n in list(self._requests.items())],
            "latency": {
                op: {"counts": list(h.counts), "sum": h.total}
                for op, h in list(self._latency.items())
            },
            "audit_flush": {"counts": list(self.audit_flush.counts), "sum": self.audit_flush.total},
            "key_cache": list(self._cache_counts),
        }

    def write(self) -> None:
        """Write this process's counts for the worker that answers the next scrape."""
        if self._directory is None:
            return
        self._directory.mkdir(parents=True, exist_ok=True)
        path = self._directory / f"{os.getpid()}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.snapshot()))
        temporary.replace(path)  # readers see the old file or the new one, never half

    def exposition(self, database: DatabaseCounts | None) -> bytes:
        """The text format of every worker's counts of this run, and ``database``'s
        (``exposition.CONTENT_TYPE``)."""
        snapshots = [self.snapshot()]
        if self._directory is not None:
            self.write()
            snapshots = list(_read_all(self._directory))
        # prometheus-client is imported by the first scrape, not by a start (~0.02 s, with
        # the http.server and urllib.request it imports).
        from strongroom.server.exposition import text_format

        return text_format(snapshots, database)


def _read_all(directory: Path) -> Iterator[dict[str, Any]]:
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            yield json.loads(path.read_text())


def run_directory(data_dir: Path, workers: int) -> Path | None:
    """Where this run's workers write their counts (None with one worker); runs whose
    supervisor is gone are removed."""
    if workers <= 1:
        return None
    base = data_dir / "metrics"
    run = os.getppid()
    with contextlib.suppress(OSError):
        for old in base.iterdir():
            if old.name.isdigit() and int(old.name) != run and not _alive(int(old.name)):
                shutil.rmtree(old, ignore_errors=True)
    return base / str(run)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
