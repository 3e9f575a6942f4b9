"""Reading a trail while it is written: every segment in time order, then only what is new,
never a line still being written."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.audit.log import AuditLog, segments
from strongroom.audit.trail import TrailReader

pytestmark = pytest.mark.unit


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "audit"


@pytest.fixture
def writer(directory: Path) -> Iterator[AuditLog]:
    audit = AuditLog(directory, fsync=True)  # zeros written ahead, as a server's segment
    audit.start()
    yield audit
    audit.stop()


def _write(audit: AuditLog, *numbers: int) -> None:
    async def run() -> None:
        for n in numbers:
            assert audit.commit({"n": n}, alone=True) is None

    asyncio.run(run())


def _read(reader: TrailReader) -> list[int]:
    return [record.event()["n"] for record in reader.read()]


def test_each_read_returns_what_was_written_since_the_one_before(
    directory: Path, writer: AuditLog
) -> None:
    reader = TrailReader(directory)
    _write(writer, 0, 1, 2)
    assert _read(reader) == [0, 1, 2]
    assert _read(reader) == []
    _write(writer, 3)
    _write(writer, 4)
    assert _read(reader) == [3, 4]
    writer.stop()  # the zeros written ahead are cut off: nothing read twice or lost
    assert _read(reader) == []


def test_records_of_several_segments_come_in_time_order_and_new_segments_are_read(
    directory: Path, writer: AuditLog
) -> None:
    reader = TrailReader(directory)
    second = AuditLog(directory, fsync=False)
    second.start()
    try:
        for n in range(6):
            _write(writer if n % 2 else second, n)
            time.sleep(0.002)
        assert _read(reader) == list(range(6))
        third = AuditLog(directory, fsync=True)  # a server that starts later
        third.start()
        try:
            _write(third, 6)
            _write(writer, 7)
            assert _read(reader) == [6, 7]
        finally:
            third.stop()
    finally:
        second.stop()
    assert len(segments(directory)) == 3


@pytest.mark.parametrize("fsync", [False, True], ids=["appended", "over zeros"])
def test_a_line_still_being_written_is_read_once_it_is_whole(directory: Path, fsync: bool) -> None:
    audit = AuditLog(directory, fsync=fsync)
    audit.start()
    _write(audit, 0, 1)
    audit.stop()
    (path,) = segments(directory)
    whole = path.read_bytes()
    lines = whole.splitlines(keepends=True)
    first, second = lines[0], lines[1]
    zeros = bytes(4096) if fsync else b""  # what a writer with fsync keeps ahead
    path.write_bytes(first + second[:40] + zeros)  # the second line, half written
    reader = TrailReader(directory)
    assert _read(reader) == [0]
    assert _read(reader) == []
    path.write_bytes(first + second + zeros)  # the rest of it
    assert _read(reader) == [1]


def test_a_directory_with_no_segments_reads_as_empty(tmp_path: Path) -> None:
    assert TrailReader(tmp_path).read() == []
