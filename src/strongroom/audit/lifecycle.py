"""The life cycle of audit segments, run by each audit log's housekeeping thread: roll over by
size and age, a signed digest at each interval, compression of closed segments (gzip), and
retention, which removes old segments only once they were exported (``audit export``) or
when the operator allows removing them unexported.

Compression and retention take a lock on ``<audit dir>/.housekeeping`` (``flock``, not
waiting): of several processes on one audit directory, one does a pass at a time. A
segment is compressed when it is closed: another segment of its writer exists, or no live
process holds its lock (the writer stopped or crashed; only this host's segments, whose
locks this host sees). The ``.log.gz`` is written beside it, synced and renamed into place,
then the ``.log`` is removed; it keeps the time it was last written (``mtime``), which is
what retention goes by.

Export markers: ``<audit dir>/exported/<segment>.json`` says a segment was exported whole
(``{"length": ..., "endHash": ..., "exportedTo": ...}``); retention removes a segment that is
older than ``retention_days`` and either has a marker whose length is the segment's, or
``retention_unexported`` is on. Before it removes anything it writes a digest that names
what it removes, so that ``audit verify`` tells a segment retention removed from one that
went missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import logging
import os
import shutil
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from strongroom.audit.digests import SegmentState
from strongroom.audit.segments import (
    COMPRESSED,
    GENESIS,
    SUFFIX,
    SegmentName,
    name_of,
    read_segment,
    segments,
)
from strongroom.audit.signing import sync_directory

if TYPE_CHECKING:
    from strongroom.audit.log import AuditLog

log = logging.getLogger(__name__)

EXPORTED = "exported"
_LOCK_FILE = ".housekeeping"
_DAY = 86400.0
_PASS_SECONDS = 60.0  # compression and retention at least this often
_RETRY_SECONDS = 1.0  # after a failed round
_GZIP_LEVEL = 6
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The settings of the segments' life cycle (README "Audit trail")."""

    segment_bytes: int = 64 << 20  # roll over once a segment holds this much
    segment_seconds: float = 86400.0  # ... or is this old (and holds events)
    digest_seconds: float = 3600.0  # a signed digest this often (CloudTrail: hourly)
    compress: bool = True  # gzip closed segments
    retention_days: float = 0.0  # remove segments older than this (0: keep them all)
    retention_unexported: bool = False  # ... even those never exported


class Housekeeper:
    """The housekeeping thread of one audit log: roll-overs, digests, compression and
    retention, each on its schedule. ``wake`` (from the writer, when a segment is full)
    makes it look at once."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self.settings = audit.lifecycle
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="audit-housekeeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        s = self.settings
        start = time.monotonic()
        next_digest = start + s.digest_seconds
        next_pass = start + min(s.digest_seconds, _PASS_SECONDS)
        while True:
            now = time.monotonic()
            due = min(next_digest, next_pass, self.audit.roll_deadline)
            self._wake.wait(max(0.0, due - now))
            self._wake.clear()
            if self._stopping:
                return
            now = time.monotonic()
            try:
                if self.audit.roll_due(now):
                    self.audit.roll()
                    next_pass = now  # compress the segment just closed
                if now >= next_digest:
                    self.audit.write_digest()
                    next_digest = now + s.digest_seconds
                if now >= next_pass:
                    self.run_pass()
                    next_pass = now + min(s.digest_seconds, _PASS_SECONDS)
            except Exception:  # the thread must go on: the next round tries again
                log.exception("audit: housekeeping failed")
                self._wake.wait(_RETRY_SECONDS)  # not at once: a full disk stays full a while

    def run_pass(self) -> bool:
        """Compress closed segments, then apply retention, unless another pass (of this
        process or another) runs: then return False."""
        s = self.settings
        if not s.compress and s.retention_days <= 0:
            return True
        with _directory_lock(self.audit.directory) as locked:
            if not locked:
                return False
            current = self.audit.segment
            if s.compress:
                compress_closed(self.audit.directory, current, lambda: self._stopping)
            if s.retention_days > 0:
                apply_retention(self.audit, current)
            return True


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[bool]:
    fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


# -- compression --------------------------------------------------------------------------


def compress_closed(
    directory: Path, current: str, stopping: Callable[[], bool] = lambda: False
) -> int:
    """Compress this host's closed ``.log`` segments other than ``current``, until
    ``stopping`` says so; returns how many. A segment another live process holds (its lock)
    is left alone."""
    host = socket.gethostname()
    done = 0
    for path in segments(directory):
        if stopping():
            break
        name = name_of(path)
        if not path.name.endswith(SUFFIX) or name == current:
            continue
        if SegmentName.parse(name).host != host:
            continue
        try:
            if compress_segment(path):
                done += 1
        except OSError:
            log.exception("audit: could not compress %s", path)
    return done


def compress_segment(path: Path) -> bool:
    """Compress one closed segment to ``.log.gz`` and remove the ``.log``; False when a
    live process holds it, when it still ends in zeros (a crashed writer's, trimmed at the
    next start) or when it went meanwhile."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # being written, or compressed by another process right now
            return False
        info = os.fstat(fd)
        try:
            if os.stat(path).st_ino != info.st_ino:
                return False
        except FileNotFoundError:  # compressed by another process meanwhile
            return False
        if info.st_size and os.pread(fd, 1, info.st_size - 1) == b"\0":
            return False
        target = path.with_name(path.name[: -len(SUFFIX)] + COMPRESSED)
        tmp = target.with_name("." + target.name + ".tmp")
        with open(fd, "rb", closefd=False) as source, tmp.open("wb") as raw:
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=_GZIP_LEVEL, mtime=0
            ) as out:
                shutil.copyfileobj(source, out, _CHUNK)
            raw.flush()
            os.fsync(raw.fileno())
        os.utime(tmp, ns=(info.st_atime_ns, info.st_mtime_ns))  # retention goes by it
        os.replace(tmp, target)
        sync_directory(path.parent)
        path.unlink()
        sync_directory(path.parent)
        return True
    finally:
        os.close(fd)


def uncompressed_length(path: Path) -> int:
    """The bytes a segment file holds uncompressed (for a ``.log.gz``: gzip's ISIZE, the
    length modulo 2**32, enough to tell an export marker's length)."""
    if not path.name.endswith(COMPRESSED):
        return path.stat().st_size
    with path.open("rb") as f:
        f.seek(-4, os.SEEK_END)
        value: int = struct.unpack("<I", f.read(4))[0]
        return value


# -- export markers and retention ---------------------------------------------------------


def mark_exported(directory: Path, state: SegmentState, output: Path) -> None:
    """Note that segment ``state.name`` was exported whole, up to ``state.length``."""
    folder = directory / EXPORTED
    folder.mkdir(exist_ok=True, mode=0o700)
    marker = {"length": state.length, "endHash": state.end_hash, "exportedTo": str(output)}
    tmp = folder / f".{state.name}.json.tmp"
    tmp.write_bytes(orjson.dumps(marker))
    os.replace(tmp, folder / f"{state.name}.json")


def exported_length(directory: Path, name: str) -> int | None:
    try:
        return int(orjson.loads((directory / EXPORTED / f"{name}.json").read_bytes())["length"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _segment_state(path: Path) -> SegmentState:
    """A closed segment's length and end hash, read."""
    length, end_hash = 0, GENESIS
    for record in read_segment(path):
        length, end_hash = record.end, record.hash
    return SegmentState(name_of(path), length, end_hash, closed=True)


def expired(directory: Path, current: str, settings: Lifecycle, now: float) -> list[Path]:
    """The segments retention may remove now: last written more than ``retention_days``
    ago, not ``current``, not held by a live process, and exported whole (unless
    ``retention_unexported``)."""
    cutoff = now - settings.retention_days * _DAY
    found = []
    paths = segments(directory)
    closed = closed_segments(paths)
    for path in paths:
        name = name_of(path)
        try:
            if name == current or name not in closed or path.stat().st_mtime >= cutoff:
                continue
            if not settings.retention_unexported:
                exported = exported_length(directory, name)
                if exported is None or exported % (1 << 32) != uncompressed_length(path) % (
                    1 << 32
                ):
                    continue
        except OSError:
            continue
        found.append(path)
    return found


def closed_segments(paths: list[Path]) -> set[str]:
    """The names of the segments of ``paths`` (one directory's) that nothing writes any
    more: compressed, rolled over (a later segment of their writer exists), or not held by
    a live process."""
    last: dict[str, int] = {}
    for path in paths:
        parsed = SegmentName.parse(name_of(path))
        if parsed.seq is not None:
            last[parsed.writer] = max(last.get(parsed.writer, 0), parsed.seq)
    found = set()
    for path in paths:
        parsed = SegmentName.parse(name_of(path))
        if (
            path.name.endswith(COMPRESSED)
            or (parsed.seq is not None and parsed.seq < last[parsed.writer])
            or not held(path)
        ):
            found.add(parsed.name)
    return found


def held(path: Path) -> bool:
    """Whether a live process holds (writes) a segment file (not once it is compressed)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # compressed since it was listed: closed
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def apply_retention(audit: AuditLog, current: str) -> int:
    """Remove the expired segments, after a digest that names them; returns how many."""
    paths = expired(audit.directory, current, audit.lifecycle, time.time())
    if not paths:
        return 0
    removed = [_segment_state(path) for path in paths]
    audit.write_digest(removed=removed)  # raises OSError rather than remove unrecorded
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        (audit.directory / EXPORTED / f"{name_of(path)}.json").unlink(missing_ok=True)
        log.info("audit: retention removed %s", path.name)
    sync_directory(audit.directory)
    return len(paths)
