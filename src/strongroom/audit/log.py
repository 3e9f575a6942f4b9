"""The audit trail: append-only, hash-chained segment files, written with group commit.

Each server process writes its own segment, ``<audit dir>/<chain>.log`` (the chain is
``<UTC start time>-<host name>-<pid>-<random>``), so processes and nodes never wait on each
other's locks. A segment is a sequence of lines::

    <hash> SP <prev_hash> SP <entry>  LF,   entry = <epoch seconds, 6 decimals> SP <event JSON>

``hash = sha256(prev_hash || entry)`` in lower-case hex; the first line's
``prev_hash`` is 64 zeros. Editing, inserting or removing a line breaks the chain,
which ``verify_trail`` reports.

``commit`` is called on the event loop. Under load, the events committed during one turn
of the loop form a group. With ``fsync`` the group goes to one writer thread, which takes
every group waiting at that moment, chains and appends them with one ``write``, makes them
durable with one ``fdatasync`` (group commit) and wakes their requests with one call into
the loop: the loop never waits for the disk. Without ``fsync`` the loop appends the group
itself at the end of the turn (a ``write`` to the page cache costs less than waking a
thread). A request that is alone (the caller says no other request is in flight) writes,
and syncs, its event itself at once: the loop has nothing else to do meanwhile, and the
hand-off to the thread and back would cost more than the sync. Either way the event is
on disk before ``commit`` returns or its future completes. A failed write or sync fails
every request it would have covered: no record, no reply.

With ``fsync``, the writer thread keeps zeros written (and synced) ahead of the end of the
segment, ``PREFILL`` bytes at a time: entries overwrite them in place, so the file's size
and blocks do not change with each entry and ``fdatasync`` flushes the entry alone rather
than also committing the file system's journal (on ext4 that halves its cost). Readers stop
at the first line that starts with a zero byte; ``stop`` cuts the zeros off. A segment
left by a crash keeps its zero tail, in which ``verify_trail`` checks that nothing but zeros
follows, until the next writer that starts on the same host cuts it off too. A writer holds
an exclusive ``flock`` on its segment until it stops (the kernel drops it when the process
dies, however it dies), so that one never cuts the zeros of a segment another live process
still writes: several workers of one server start and write side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

log = logging.getLogger(__name__)

GENESIS = "0" * 64
SUFFIX = ".log"

Group = list[tuple[bytes, asyncio.Future[None]]]  # entries and the requests waiting for them
_MAX_GROUP = 4096
PREFILL = 1 << 20  # bytes of zeros the writer thread keeps written ahead of the end
_PREFILL = object()  # in the writer's queue: write the next zeros ahead


def chain_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


class AuditLog:
    """The writer of one process's segment. ``commit`` is called on one event loop at a
    time; the event is on disk once it returns None or once the future it returns
    completes."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self.fsync = fsync
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.chain = f"{stamp}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._pending: Group = []  # committed during this turn of the loop
        # A group, _PREFILL (write zeros ahead) or None (stop).
        self._groups: queue.SimpleQueue[Group | object | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # held to append (the chain's end moves) and to close
        # Held to hand a group to the writer thread and to stop it (never during I/O, so the
        # loop does not wait for the writer's write to hand it the next group).
        self._handoff = threading.Lock()
        self._prev = GENESIS
        self._fd = -1
        self._end = 0  # where the next entry goes
        self._size = 0  # the file's size: [_end, _size) are zeros written ahead
        self._prefill_asked = False
        self._thread: threading.Thread | None = None
        # Told the seconds each write (and sync) of events took: the metrics' audit flush.
        self.on_flush: Callable[[float], None] | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / (self.chain + SUFFIX)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # held until close: this segment is written
        except OSError:  # a file system without locks: nobody can trim any segment there
            log.warning("audit: could not lock %s; crashed segments keep their zeros", path)
        trim_abandoned_segments(self.directory)
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        if self.fsync:
            self._ask_prefill()  # the first zeros, written by the thread: start-up does not wait
        self._thread.start()

    def commit(self, event: Mapping[str, Any], *, alone: bool) -> asyncio.Future[None] | None:
        """Make ``event`` durable. When ``alone`` (no other request is in flight, so none
        would share the write) it is written, and synced, before this returns None.
        Otherwise it joins this loop turn's group: await the future returned, which
        completes once the group is on disk. Raises OSError (directly) or fails the
        future when the write or the sync fails."""
        entry = b"%.6f " % time.time() + orjson.dumps(event)
        if alone and not self._pending:
            started = time.perf_counter()
            with self._lock:
                self._append([entry])
            if self.fsync:
                os.fdatasync(self._fd)
            if self.on_flush is not None:
                self.on_flush(time.perf_counter() - started)
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._end_of_turn)  # after the requests ready in this turn
        self._pending.append((entry, future))
        return future

    def submit(self, event: Mapping[str, Any]) -> asyncio.Future[None]:
        """``commit`` for a caller that does not know whether it is alone: the event joins
        this loop turn's group; await the future before replying."""
        future = self.commit(event, alone=False)
        assert future is not None
        return future

    def stop(self) -> None:
        """Write and sync what is committed, then close the segment."""
        with self._handoff:  # from here on, groups are written on the loop
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._groups.put(None)
        thread.join(timeout=30)
        with self._lock:
            try:
                if self._size > self._end:  # cut the zeros written ahead off
                    os.ftruncate(self._fd, self._end)
                    os.fsync(self._fd)
            except OSError:  # readers stop at the zeros anyway
                log.exception("audit: could not cut the zeros off the end of the segment")
            os.close(self._fd)
            self._fd = -1  # a later commit fails (EBADF) rather than writing nowhere

    def _end_of_turn(self) -> None:
        """The group of this turn: to the writer thread (fsync), or appended here."""
        group, self._pending = self._pending, []
        with self._handoff:
            if self.fsync and self._thread is not None:
                self._groups.put(group)
                return
        error: OSError | None = None
        try:
            with self._lock:
                self._append([entry for entry, _ in group])
            if self.fsync:  # stopping: no writer thread any more
                os.fdatasync(self._fd)
        except OSError as exc:
            log.exception("audit write failed; failing %d requests", len(group))
            error = exc
        _complete([future for _, future in group], error)

    def _run(self) -> None:
        """The writer thread: every group waiting, in one write and one fdatasync; zeros
        ahead of the end when asked."""
        while True:
            item = self._groups.get()
            group: Group = []
            stopping = prefill = False
            while True:
                if item is None:
                    stopping = True
                elif isinstance(item, list):
                    group += item
                else:
                    prefill = True  # _PREFILL
                if stopping or len(group) >= _MAX_GROUP:
                    break
                try:
                    item = self._groups.get_nowait()
                except queue.Empty:
                    break
            if group:
                self._write(group)
            if prefill:
                self._prefill()
            if stopping:
                return

    def _write(self, group: Group) -> None:
        """One group commit of the writer thread, then wake the group's requests."""
        error: OSError | None = None
        started = time.perf_counter()
        try:
            with self._lock:
                self._append([entry for entry, _ in group])
            os.fdatasync(self._fd)
        except OSError as exc:
            log.exception("audit write failed; failing %d requests", len(group))
            error = exc
        if self.on_flush is not None:
            self.on_flush(time.perf_counter() - started)
        _wake([future for _, future in group], error)

    def _append(self, entries: list[bytes]) -> None:
        """Chain and write entries at the end with one write; the caller holds ``_lock``.
        On OSError the chain's end stays where it was (the next write goes over whatever
        part of these entries reached the file)."""
        lines = []
        prev = self._prev
        for entry in entries:
            digest = chain_hash(prev, entry)
            lines.append(f"{digest} {prev} ".encode() + entry + b"\n")
            prev = digest
        end = _write_at(self._fd, b"".join(lines), self._end)
        self._end, self._prev = end, prev
        if end > self._size:  # past the zeros: the write made the file longer
            self._size = end
        if self.fsync and self._size - end < PREFILL // 2:
            self._ask_prefill()

    def _ask_prefill(self) -> None:
        if not self._prefill_asked:
            self._prefill_asked = True
            self._groups.put(_PREFILL)

    def _prefill(self) -> None:
        """Writer thread: write the next PREFILL bytes of zeros past the end of the file,
        then sync them (outside the lock: an entry written there meanwhile is synced by
        its own writer), so that later syncs carry entries only."""
        try:
            with self._lock:
                if self._fd < 0:
                    return
                self._size = _write_at(self._fd, bytes(PREFILL), self._size)
            os.fdatasync(self._fd)
        except OSError:  # only slower syncs: entries still extend the file
            log.exception("audit: could not write zeros ahead of the end of the segment")
        finally:
            self._prefill_asked = False


def trim_abandoned_segments(directory: Path) -> None:
    """Cut the zeros written ahead off the end of every segment of this host that no live
    process writes (its writer crashed before ``stop``). A segment whose ``flock`` another
    process holds is being written and is left alone, and so are other hosts' segments (a
    lock on a shared file system may not reach them). Only zero bytes after the last byte
    that is not zero go: the entries, and their hash chain, stay as they are. Failures are
    logged and leave the segment as it was: the zeros cost space, not correctness."""
    host = socket.gethostname()
    for path in segments(directory):
        if _host_of(path.name[: -len(SUFFIX)]) != host:
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            log.exception("audit: could not open %s to cut the zeros off its end", path)
            continue
        try:
            size = os.fstat(fd).st_size
            if size == 0 or os.pread(fd, 1, size - 1) != b"\0":
                continue  # stopped cleanly (or nothing to cut)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # a live process writes it (or trims it right now), or no locks
                continue
            size = os.fstat(fd).st_size
            end = _end_of_data(fd, size)
            if end < size:
                os.ftruncate(fd, end)
                os.fsync(fd)
                log.info("audit: cut %d bytes of zeros off %s (left by a crash)", size - end, path)
        except OSError:
            log.exception("audit: could not cut the zeros off the end of %s", path)
        finally:
            os.close(fd)  # and with it the lock


def _host_of(chain: str) -> str:
    """The host name in a chain name ``<time>-<host>-<pid>-<random>`` ("" if not one)."""
    parts = chain.split("-", 1)[-1].rsplit("-", 2)
    return parts[0] if len(parts) == 3 else ""


def _end_of_data(fd: int, size: int) -> int:
    """The offset just after the last byte of the file that is not zero (0 if none is)."""
    end = size
    while end > 0:
        start = max(0, end - PREFILL)
        chunk = os.pread(fd, end - start, start)
        data = chunk.rstrip(b"\0")
        if data:
            return start + len(data)
        end = start
    return 0


def _write_at(fd: int, data: bytes, offset: int) -> int:
    """Write all of ``data`` at ``offset``; return the offset after it."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        offset += written
        view = view[written:]
    return offset


def _wake(futures: list[asyncio.Future[None]], error: OSError | None) -> None:
    """From another thread: complete the futures with one call into each event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for future in futures:
        by_loop.setdefault(future.get_loop(), []).append(future)
    for loop, some in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_complete, some, error)


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
    end: int  # the offset in the segment just after this record's line

    @property
    def time(self) -> float:
        return float(self.body.split(b" ", 1)[0])

    def event(self) -> dict[str, Any]:
        value = orjson.loads(self.body.split(b" ", 1)[1])
        assert isinstance(value, dict)
        return value


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*" + SUFFIX)) if directory.is_dir() else []


def read_segment(
    path: Path, *, strict: bool = False, offset: int = 0, line: int = 1
) -> Iterator[Record]:
    """The records of one segment, up to its end or to the zeros written ahead of it,
    from the start of the file or from ``offset`` (a record's ``end``), whose line is
    numbered ``line``. Not ``strict`` (reading a trail a server may be writing): a last
    line still being written (no newline yet, or zeros where the rest will go) is not read.
    ``strict`` (verifying): such a line is read as it is, and ValueError is raised if
    anything but zeros follows the zeros."""
    chain = path.name[: -len(SUFFIX)]
    with path.open("rb") as f:
        f.seek(offset)
        for number, raw in enumerate(f, start=line):
            if raw[:1] == b"\0":
                if strict and (raw.strip(b"\0") or _more_than_zeros(f)):
                    raise ValueError(f"data after the zeros that end the segment (line {number})")
                return
            if not strict and (raw[-1:] != b"\n" or b"\0" in raw):
                return
            offset += len(raw)
            digest, prev, body = raw.rstrip(b"\n").split(b" ", 2)
            yield Record(chain, number, digest.decode(), prev.decode(), body, offset)


def _more_than_zeros(f: BinaryIO) -> bool:
    return any(chunk.strip(b"\0") for chunk in iter(lambda: f.read(PREFILL), b""))


def verify_trail(directory: Path) -> tuple[int, list[str]]:
    """Walk every segment's chain; return the number of events and the problems found."""
    problems: list[str] = []
    count = 0
    for path in segments(directory):
        prev = GENESIS
        try:
            for record in read_segment(path, strict=True):
                count += 1
                where = f"{path.name} line {record.line}"
                if record.prev_hash != prev:
                    problems.append(
                        f"{where}: chain broken (a line before it was changed or removed)"
                    )
                if chain_hash(record.prev_hash, record.body) != record.hash:
                    problems.append(f"{where}: event does not match its hash")
                prev = record.hash
        except ValueError as exc:
            problems.append(f"{path.name}: malformed line after {count} events ({exc})")
    return count, problems
