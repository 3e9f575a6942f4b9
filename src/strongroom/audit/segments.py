"""Segment files of the audit trail: their names, how they are listed, and how their records
are read, plain or compressed.

A segment is named ``<writer>.<sequence>`` where the writer is one process's run of the
audit log (``<UTC start time>-<host name>-<pid>-<random>``) and the sequence counts its
segments from 000001 as they roll over. It is ``<name>.log`` while it is written and
``<name>.log.gz`` once it was closed and compressed; when both exist (a compression cut
short by a crash) the ``.log`` is the one read. Segments written before rotation existed
are named ``<writer>.log``: they have no sequence, and no digest names them.

A segment is a sequence of lines::

    <hash> SP <prev_hash> SP <entry>  LF,   entry = <epoch seconds, 6 decimals> SP <event JSON>

``hash = sha256(prev_hash || entry)`` in lower-case hex; each segment's first line's
``prev_hash`` is 64 zeros (GENESIS). Editing, inserting or removing a line breaks the
chain; the digests (``audit/digests.py``) catch what the chain cannot: a cut tail, a
removed segment.

The JSON of an entry is one of two records, both chained and vouched for by the digests
alike: a CloudTrail event (``audit/events.py``, ``build_event``), or an intent record
(``build_intent``), written before a request that changes state runs, whose JSON begins
with ``{"recordType":"Intent"`` (INTENT_PREFIX; an event begins with ``{"eventVersion"``).
``Record.is_intent`` tells them apart without parsing. Every reader of the trail either
skips intents (the console, ``audit export``; ``TrailReader`` unless asked) or shows them
as intents (``audit events --intents``, ``audit verify``'s count); none passes one off as
an event.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import orjson

GENESIS = "0" * 64
SUFFIX = ".log"
COMPRESSED = ".log.gz"
_READ_CHUNK = 1 << 20
INTENT_PREFIX = b'{"recordType":"Intent"'  # how an intent record's JSON begins

# <time>-<host>-<pid>-<8 hex>[.<sequence>]; the host may hold dashes and dots.
_NAME = re.compile(r"(?P<writer>[0-9]{8}T[0-9]{6}Z-.+-[0-9]+-[0-9a-f]{8})(?:\.(?P<seq>[0-9]{6,}))?")


def chain_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


@dataclass(frozen=True, slots=True)
class SegmentName:
    """What a segment's name says: its writer and its sequence (None: written before
    rotation, or a name this module did not give)."""

    name: str
    writer: str
    seq: int | None

    @classmethod
    def parse(cls, name: str) -> SegmentName:
        match = _NAME.fullmatch(name)
        if match is None:
            return cls(name, name, None)
        seq = match["seq"]
        return cls(name, match["writer"], None if seq is None else int(seq))

    @property
    def host(self) -> str:
        """The host name of the writer ("" if the name is not one this module gave)."""
        parts = self.writer.split("-", 1)[-1].rsplit("-", 2)
        return parts[0] if len(parts) == 3 else ""


def segment_name(writer: str, seq: int) -> str:
    return f"{writer}.{seq:06d}"


def name_of(path: Path) -> str:
    """The segment name of a segment file (``.log`` or ``.log.gz``)."""
    name = path.name
    return name[: -len(COMPRESSED)] if name.endswith(COMPRESSED) else name[: -len(SUFFIX)]


def segments(directory: Path) -> list[Path]:
    """The segment files of ``directory``, one per segment (its ``.log`` if it has one,
    else its ``.log.gz``), in name order: a writer's segments in the order written."""
    if not directory.is_dir():
        return []
    found: dict[str, Path] = {}
    for path in directory.glob("*" + COMPRESSED):
        found[name_of(path)] = path
    for path in directory.glob("*" + SUFFIX):
        found[name_of(path)] = path
    return [found[name] for name in sorted(found)]


def segment_file(directory: Path, name: str) -> Path | None:
    """The file of segment ``name`` in ``directory`` (None when neither form exists)."""
    for suffix in (SUFFIX, COMPRESSED):
        path = directory / (name + suffix)
        if path.exists():
            return path
    return None


def open_segment(path: Path) -> BinaryIO:
    """A segment file opened for reading, decompressed if it is a ``.log.gz``; a ``.log``
    compressed since it was listed is opened as its ``.log.gz``."""
    if not path.name.endswith(COMPRESSED):
        try:
            return path.open("rb")
        except FileNotFoundError:
            path = path.with_name(path.name + ".gz")
    return cast(BinaryIO, gzip.open(path, "rb"))


@dataclass(frozen=True, slots=True)
class Record:
    chain: str  # the segment's name
    line: int
    hash: str
    prev_hash: str
    body: bytes  # the entry: time and event JSON
    end: int  # the offset in the segment just after this record's line

    @property
    def time(self) -> float:
        return float(self.body.split(b" ", 1)[0])

    @property
    def is_intent(self) -> bool:
        """Whether this is an intent record rather than an event (see the module's doc)."""
        return self.body.startswith(INTENT_PREFIX, self.body.find(b" ") + 1)

    def event(self) -> dict[str, Any]:
        value = orjson.loads(self.body.split(b" ", 1)[1])
        assert isinstance(value, dict)
        return value


def read_segment(
    path: Path, *, strict: bool = False, offset: int = 0, line: int = 1
) -> Iterator[Record]:
    """The records of one segment (plain or compressed), up to its end or to the zeros
    written ahead of it, from the start of the file or from ``offset`` (a record's
    ``end``), whose line is numbered ``line``. Not ``strict`` (reading a trail a server may
    be writing): a last line still being written (no newline yet, or zeros where the rest
    will go) is not read. ``strict`` (verifying): such a line is read as it is, and
    ValueError is raised if anything but zeros follows the zeros."""
    chain = name_of(path)
    with open_segment(path) as f:
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


def _more_than_zeros(f: IO[bytes]) -> bool:
    return any(chunk.strip(b"\0") for chunk in iter(lambda: f.read(_READ_CHUNK), b""))
