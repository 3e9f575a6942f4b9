"""The audit trail's writer: append-only, hash-chained segment files, written with group
commit, rolled over by size and age, and vouched for by signed digests.

Each server process writes its own segments, ``<audit dir>/<writer>.<sequence>.log`` (the
writer is ``<UTC start time>-<host name>-<pid>-<random>``, the sequence counts from 000001;
``audit/segments.py`` has the line format and the hash chain), so processes and nodes never
wait on each other's locks.

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
an exclusive ``flock`` on its segment until it stops or rolls over (the kernel drops it when
the process dies, however it dies), so that one never cuts the zeros of a segment another
live process still writes: several workers of one server start and write side by side.

Everything else happens on a housekeeping thread (``audit/lifecycle.py``), never on the
loop nor on the writer thread: rolling over to the next segment (when the segment reaches
``segment_bytes``, which the append notices with one comparison, or ``segment_seconds``),
the digest every ``digest_seconds`` (``audit/digests.py``; and a final one at ``stop``),
compressing closed segments and retention. A roll opens and prefills the next segment
first, swaps it in under the lock, then cuts and syncs the old one; the old descriptor stays
open until the roll after, so that a sync that began on it before the swap still syncs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from strongroom.audit.digests import DigestChain, SegmentState
from strongroom.audit.lifecycle import Housekeeper, Lifecycle
from strongroom.audit.segments import (
    GENESIS,
    SUFFIX,
    Record,
    SegmentName,
    chain_hash,
    read_segment,
    segment_name,
    segments,
)
from strongroom.audit.signing import Signer, sync_directory
from strongroom.audit.verify import verify_trail

__all__ = [
    "GENESIS",
    "PREFILL",
    "AuditLog",
    "Record",
    "chain_hash",
    "read_segment",
    "segments",
    "trim_abandoned_segments",
    "verify_trail",
]

log = logging.getLogger(__name__)

Group = list[tuple[bytes, asyncio.Future[None]]]  # entries and the requests waiting for them
_MAX_GROUP = 4096
PREFILL = 1 << 20  # bytes of zeros the writer thread keeps written ahead of the end
_PREFILL = object()  # in the writer's queue: write the next zeros ahead


class AuditLog:
    """The writer of one process's segments. ``commit`` is called on one event loop at a
    time; the event is on disk once it returns None or once the future it returns
    completes. ``signer``: the key that signs the digests (None: no digests are written,
    as in tests of the writer alone). ``prefill`` False: no zeros are written ahead (a
    short-lived writer, an admin command's, writes a few records and stops: the zeros would
    cost more than they save)."""

    def __init__(
        self,
        directory: Path,
        *,
        fsync: bool = True,
        lifecycle: Lifecycle | None = None,
        signer: Signer | None = None,
        prefill: bool = True,
    ) -> None:
        self.directory = directory
        self.fsync = fsync
        self._prefills = fsync and prefill
        self.lifecycle = lifecycle or Lifecycle()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.writer = f"{stamp}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._seq = 1
        self.signer = signer
        self._digests = None if signer is None else DigestChain(directory, self.writer, signer)
        self._segment_bytes = self.lifecycle.segment_bytes
        self._roll_asked = False
        self._opened = 0.0  # time.monotonic() when the current segment was opened
        self._retired: list[int] = []  # descriptors of rolled-over segments, closed late
        self._undigested: list[SegmentState] = []  # closed since the last digest
        self._housekeeper: Housekeeper | None = None
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

    @property
    def segment(self) -> str:
        """The name of the segment being written."""
        return segment_name(self.writer, self._seq)

    @property
    def chain(self) -> str:
        """The name of the segment being written (its hash chain's name)."""
        return self.segment

    def start(self) -> None:
        if self._thread is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = self._open_segment(self._seq)
        self._opened = time.monotonic()
        trim_abandoned_segments(self.directory)
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        if self._prefills:
            self._ask_prefill()  # the first zeros, written by the thread: start-up does not wait
        self._thread.start()
        self._housekeeper = Housekeeper(self)
        self._housekeeper.start()

    def _open_segment(self, seq: int) -> int:
        """Create segment ``seq`` and lock it (held until it is closed or rolled over)."""
        path = self.directory / (segment_name(self.writer, seq) + SUFFIX)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: nobody can trim any segment there
            log.warning("audit: could not lock %s; crashed segments keep their zeros", path)
        return fd

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
                fd = self._append([entry])
            if self.fsync:
                os.fdatasync(fd)
            if self.on_flush is not None:
                self.on_flush(time.perf_counter() - started)
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._end_of_turn)  # after the requests ready in this turn
        self._pending.append((entry, future))
        return future

    def write_now(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Write ``records`` at the end of the trail and sync them before returning, from
        any thread (the scheduled jobs write the intents and events of the changes they
        make). Raises OSError when they could not be made durable, ValueError when the log
        is not started or already stopped."""
        if self._fd < 0:
            raise ValueError("the audit log is not open")
        stamp = b"%.6f " % time.time()
        entries = [stamp + orjson.dumps(record) for record in records]
        started = time.perf_counter()
        with self._lock:
            fd = self._append(entries)
        if self.fsync:
            os.fdatasync(fd)
        if self.on_flush is not None:
            self.on_flush(time.perf_counter() - started)

    def submit(self, event: Mapping[str, Any]) -> asyncio.Future[None]:
        """``commit`` for a caller that does not know whether it is alone: the event joins
        this loop turn's group; await the future before replying."""
        future = self.commit(event, alone=False)
        assert future is not None
        return future

    def stop(self) -> None:
        """Write and sync what is committed, close the segment, then write the final
        digest."""
        if self._housekeeper is not None:
            self._housekeeper.stop()
            self._housekeeper = None
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
            last = SegmentState(self.segment, self._end, self._prev, closed=True)
            os.close(self._fd)
            self._fd = -1  # a later commit fails (EBADF) rather than writing nowhere
            retired, self._retired = self._retired, []
        for fd in retired:
            os.close(fd)
        self.write_digest([last], final=True)

    # -- for the housekeeping thread ------------------------------------------------------

    @property
    def roll_deadline(self) -> float:
        """When (time.monotonic()) the segment is ``segment_seconds`` old."""
        return self._opened + self.lifecycle.segment_seconds

    def roll_due(self, now: float) -> bool:
        """Whether the segment should roll over: it reached ``segment_bytes``, or it holds
        events and is ``segment_seconds`` old (``now``: time.monotonic()). An empty segment
        that is old enough gets another ``segment_seconds``."""
        if self._roll_asked:
            return True
        if now < self.roll_deadline:
            return False
        if self._end > 0:
            return True
        self._opened = now
        return False

    def roll(self) -> None:
        """Close the segment and go on in the next one. The next is created and prefilled
        before the swap, so that writers wait only for the swap itself."""
        seq = self._seq + 1
        fd = self._open_segment(seq)
        size = 0
        try:
            if self._prefills:
                size = _write_at(fd, bytes(PREFILL), 0)
                os.fdatasync(fd)
            sync_directory(self.directory)  # the new segment's name is durable
        except OSError:
            log.exception("audit: could not prepare the next segment; it fills as it goes")
        with self._lock:
            if self._fd < 0:  # stopped meanwhile
                os.close(fd)
                (self.directory / (segment_name(self.writer, seq) + SUFFIX)).unlink()
                return
            old_fd, end, old_size, prev, name = (
                self._fd,
                self._end,
                self._size,
                self._prev,
                self.segment,
            )
            self._fd, self._end, self._size, self._prev, self._seq = fd, 0, size, GENESIS, seq
            self._opened = time.monotonic()
            self._roll_asked = False
            to_close, self._retired = self._retired, [old_fd]
        try:
            if old_size > end:
                os.ftruncate(old_fd, end)
            os.fsync(old_fd)
        except OSError:
            log.exception("audit: could not cut and sync the segment %s it rolled over", name)
        with contextlib.suppress(OSError):
            fcntl.flock(old_fd, fcntl.LOCK_UN)  # closed: compression may take it
        for old in to_close:
            os.close(old)
        if self._digests is not None:
            self._undigested.append(SegmentState(name, end, prev, closed=True))
        log.info("audit: rolled over to segment %s", self.segment)

    def current(self) -> SegmentState:
        """The segment being written, as far as it is durable now."""
        with self._lock:
            fd, state = self._fd, SegmentState(self.segment, self._end, self._prev)
        if fd >= 0:
            os.fdatasync(fd)  # a digest vouches only for what is on disk
        return state

    def write_digest(
        self,
        segments: list[SegmentState] | None = None,
        removed: Sequence[SegmentState] = (),
        *,
        final: bool = False,
    ) -> None:
        """Sign and write the next digest: the segments closed since the last one and
        ``segments`` (default: the one being written); ``removed``: the segments retention
        removes right after. Failures are logged (the next digest covers the same)."""
        if self._digests is None:
            return
        listed = [*self._undigested, *(segments if segments is not None else [self.current()])]
        try:
            self._digests.write(time.time(), listed, removed=removed, final=final)
        except OSError:
            log.exception("audit: could not write the digest")
            if removed:
                raise
            return
        self._undigested = []

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
                fd = self._append([entry for entry, _ in group])
            if self.fsync:  # stopping: no writer thread any more
                os.fdatasync(fd)
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
                fd = self._append([entry for entry, _ in group])
            os.fdatasync(fd)
        except OSError as exc:
            log.exception("audit write failed; failing %d requests", len(group))
            error = exc
        if self.on_flush is not None:
            self.on_flush(time.perf_counter() - started)
        _wake([future for _, future in group], error)

    def _append(self, entries: list[bytes]) -> int:
        """Chain and write entries at the end with one write; the caller holds ``_lock``.
        Returns the descriptor written to, for the caller to sync (a roll may swap the
        segment once the lock is let go). On OSError the chain's end stays where it was
        (the next write goes over whatever part of these entries reached the file)."""
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
        if self._prefills and self._size - end < PREFILL // 2:
            self._ask_prefill()
        if end >= self._segment_bytes and not self._roll_asked:
            self._roll_asked = True
            if self._housekeeper is not None:
                self._housekeeper.wake()
        return self._fd

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
        if not path.name.endswith(SUFFIX):
            continue  # compressed: closed long since
        if SegmentName.parse(path.name[: -len(SUFFIX)]).host != host:
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:  # compressed by a running server since it was listed
            continue
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
