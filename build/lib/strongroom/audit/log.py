"""The audit trail: append-only, hash-chained segment files, written with group commit.

Each server process writes its own segment, ``<audit dir>/<chain>.log``, so processes and
nodes never wait on each other's locks. A segment is a sequence of lines::

    <hash> SP <prev_hash> SP <entry>  LF,   entry = <epoch seconds, 6 decimals> SP <event JSON>

``hash = sha256(prev_hash || entry)`` in lower-case hex; the first line's
``prev_hash`` is 64 zeros. Editing, inserting or removing a line breaks the chain,
which ``verify_trail`` reports.

Requests hand their event to one writer thread and wait for it. The thread takes every
event waiting at that moment, appends them with one ``write`` and makes them durable
with one ``fdatasync`` (group commit), then wakes the waiting requests with one call
into their event loop. A failed write fails every waiting request: no record, no reply.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

GENESIS = "0" * 64
SUFFIX = ".log"
_MAX_BATCH = 1024

Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]


def chain_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


class AuditLog:
    """The writer of one process's segment. ``submit`` is called on the event loop and
    returns a future that completes once the event is on disk."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self.fsync = fsync
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.chain = f"{stamp}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._queue: queue.SimpleQueue[tuple[bytes, Waiter | None] | None] = queue.SimpleQueue()
        self._prev = GENESIS
        self._fd = -1
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / (self.chain + SUFFIX)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def submit(self, event: Mapping[str, Any]) -> asyncio.Future[None]:
        """Queue an event; await the result before replying."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = b"%.6f " % time.time() + orjson.dumps(event)
        self._queue.put((entry, (loop, future)))
        return future

    def stop(self) -> None:
        """Write what is queued, then close the segment."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._thread = None
        os.close(self._fd)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < _MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._write(batch)

    def _write(self, batch: list[tuple[bytes, Waiter | None]]) -> None:
        lines = []
        prev = self._prev
        for body, _ in batch:
            digest = chain_hash(prev, body)
            lines.append(f"{digest} {prev} ".encode() + body + b"\n")
            prev = digest
        error: OSError | None = None
        try:
            data = b"".join(lines)
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
            if self.fsync:
                os.fdatasync(self._fd)
            self._prev = prev
        except OSError as exc:
            log.exception("audit write failed; failing %d requests", len(batch))
            error = exc
        _wake([w for _, w in batch if w is not None], error)


def _wake(waiters: list[Waiter], error: OSError | None) -> None:
    """Complete the futures with one call into each event loop involved."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for loop, future in waiters:
        by_loop.setdefault(loop, []).append(future)
    for loop, futures in by_loop.items():
        loop.call_soon_threadsafe(_complete, futures, error)


def _complete(futures: list[asyncio.Future[None]], error: OSError | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


# -- reading ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Record:
    chain: str
    line: int
    hash: str
    prev_hash: str
    body: bytes  # the entry: time and event JSON

    @property
    def time(self) -> float:
        return float(self.body.split(b" ", 1)[0])

    def event(self) -> dict[str, Any]:
        value = orjson.loads(self.body.split(b" ", 1)[1])
        assert isinstance(value, dict)
        return value


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*" + SUFFIX)) if directory.is_dir() else []


def read_segment(path: Path) -> Iterator[Record]:
    chain = path.name[: -len(SUFFIX)]
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            digest, prev, body = raw.rstrip(b"\n").split(b" ", 2)
            yield Record(chain, number, digest.decode(), prev.decode(), body)


def verify_trail(directory: Path) -> tuple[int, list[str]]:
    """Walk every segment's chain; return the number of events and the problems found."""
    problems: list[str] = []
    count = 0
    for path in segments(directory):
        prev = GENESIS
        try:
            for record in read_segment(path):
                count += 1
                where = f"{path.name} line {record.line}"
                if record.prev_hash != prev:
                    problems.append(
                        f"{where}: chain broken (a line before it was changed or removed)"
                    )
                if chain_hash(record.prev_hash, record.body) != record.hash:
                    problems.append(f"{where}: event does not match its hash")
                prev = record.hash
        except ValueError:
            problems.append(f"{path.name}: malformed line after {count} events")
    return count, problems
