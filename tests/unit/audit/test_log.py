"""The audit segment: a lone event written directly, others group-committed by the writer
thread, one hash chain either way, and no reply without a record."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.audit import log as audit_log
from strongroom.audit.log import AuditLog, read_segment, segments, verify_trail

pytestmark = pytest.mark.unit


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    writer = AuditLog(tmp_path / "audit", fsync=True)
    writer.start()
    yield writer
    writer.stop()


def _events(directory: Path) -> list[dict[str, Any]]:
    return [record.event() for path in segments(directory) for record in read_segment(path)]


def _trail_ok(directory: Path, expected: int) -> None:
    assert verify_trail(directory) == (expected, [])


def test_a_lone_event_is_on_disk_when_commit_returns(audit: AuditLog) -> None:
    async def one() -> None:
        assert audit.commit({"n": 1}, alone=True) is None
        assert _events(audit.directory) == [{"n": 1}]  # before any await

    asyncio.run(one())
    _trail_ok(audit.directory, 1)


def test_events_not_alone_are_on_disk_when_their_future_completes(audit: AuditLog) -> None:
    async def many() -> None:
        futures = [audit.commit({"n": i}, alone=False) for i in range(25)]
        futures += [audit.submit({"n": i}) for i in range(25, 50)]  # the same, for callers
        assert all(f is not None for f in futures)  # that do not track concurrency
        assert _events(audit.directory) == []
        await asyncio.gather(*[f for f in futures if f is not None])
        assert sorted(e["n"] for e in _events(audit.directory)) == list(range(50))

    asyncio.run(many())
    _trail_ok(audit.directory, 50)


def test_lone_and_grouped_events_share_one_chain(audit: AuditLog) -> None:
    async def mixed() -> None:
        for i in range(20):
            future = audit.commit({"n": i}, alone=i % 3 == 0)
            if future is not None:
                await future

    asyncio.run(mixed())
    assert [e["n"] for e in _events(audit.directory)] == list(range(20))
    _trail_ok(audit.directory, 20)


def test_a_lone_event_joins_a_group_that_is_waiting_for_the_same_loop_turn(
    audit: AuditLog,
) -> None:
    async def run() -> None:
        first = audit.commit({"n": 1}, alone=False)
        second = audit.commit({"n": 2}, alone=True)
        assert first is not None and second is not None
        assert _events(audit.directory) == []
        await asyncio.gather(first, second)
        assert [e["n"] for e in _events(audit.directory)] == [1, 2]

    asyncio.run(run())
    _trail_ok(audit.directory, 2)


def _failing_write(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit_log.os, "pwrite", fail)


def test_a_failed_lone_write_raises_and_leaves_the_chain_intact(
    audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run() -> None:
        assert audit.commit({"n": 1}, alone=True) is None
        with monkeypatch.context() as patch:
            _failing_write(patch)
            with pytest.raises(OSError, match="No space"):
                audit.commit({"n": 2}, alone=True)
        assert audit.commit({"n": 3}, alone=True) is None

    asyncio.run(run())
    assert [e["n"] for e in _events(audit.directory)] == [1, 3]
    _trail_ok(audit.directory, 2)


def test_a_failed_group_write_fails_every_future_of_the_group(
    audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run() -> None:
        with monkeypatch.context() as patch:
            _failing_write(patch)
            futures = [audit.commit({"n": i}, alone=False) for i in range(5)]
            results = await asyncio.gather(*[f for f in futures if f], return_exceptions=True)
        assert len(results) == 5 and all(isinstance(r, OSError) for r in results)

    asyncio.run(run())
    assert _events(audit.directory) == []


def test_a_failed_sync_fails_the_waiting_requests(
    audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    async def run() -> None:
        with monkeypatch.context() as patch:
            patch.setattr(audit_log.os, "fdatasync", fail)
            futures = [audit.commit({"n": i}, alone=False) for i in range(3)]
            results = await asyncio.gather(*[f for f in futures if f], return_exceptions=True)
            assert all(isinstance(r, OSError) for r in results) and len(results) == 3
            with pytest.raises(OSError, match="Input/output"):
                audit.commit({"n": 3}, alone=True)
        later = audit.commit({"n": 4}, alone=False)
        assert later is not None
        await later

    asyncio.run(run())


def test_a_commit_after_stop_fails_instead_of_writing_nowhere(tmp_path: Path) -> None:
    writer = AuditLog(tmp_path / "audit", fsync=False)
    writer.start()
    writer.stop()

    async def late() -> None:
        with pytest.raises(OSError) as raised:
            writer.commit({"n": 1}, alone=True)
        assert raised.value.errno == errno.EBADF

    asyncio.run(late())


def test_fsync_setting_is_followed_by_the_direct_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []  # by the direct path: on this thread, not the writer's
    real = os.fdatasync
    here = threading.current_thread()

    def sync(fd: int) -> None:
        if threading.current_thread() is here:
            synced.append(fd)
        real(fd)

    monkeypatch.setattr(audit_log.os, "fdatasync", sync)
    for fsync in (True, False):
        writer = AuditLog(tmp_path / f"audit-{fsync}", fsync=fsync)
        writer.start()
        synced.clear()

        async def one(writer: AuditLog = writer) -> None:
            assert writer.commit({"n": 1}, alone=True) is None

        asyncio.run(one())
        assert len(synced) == (1 if fsync else 0)
        writer.stop()


def test_stop_writes_the_groups_handed_to_the_writer_and_wakes_them(tmp_path: Path) -> None:
    writer = AuditLog(tmp_path / "audit", fsync=True)
    writer.start()

    async def run() -> None:
        futures = [writer.commit({"n": i}, alone=False) for i in range(5)]
        await asyncio.sleep(0)  # the loop turn ends: the group goes to the writer thread
        await asyncio.get_running_loop().run_in_executor(None, writer.stop)
        await asyncio.gather(*[f for f in futures if f is not None])

    asyncio.run(run())
    _trail_ok(writer.directory, 5)


@pytest.mark.parametrize(("fsync", "writer"), [(True, "audit-writer"), (False, "loop")])
def test_groups_are_written_by_the_writer_thread_only_when_they_must_be_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool, writer: str
) -> None:
    audit = AuditLog(tmp_path / "audit", fsync=fsync)
    audit.start()
    writers: list[str] = []
    real = os.pwrite

    def write(fd: int, data: bytes, offset: int) -> int:
        if bytes(data[:1]) != b"\0":  # not the zeros written ahead of the end
            name = threading.current_thread().name
            writers.append("loop" if name == loop_thread else name)
        return real(fd, data, offset)

    monkeypatch.setattr(audit_log.os, "pwrite", write)
    loop_thread = threading.current_thread().name

    async def group() -> None:
        futures = [audit.commit({"n": i}, alone=False) for i in range(10)]
        await asyncio.gather(*[f for f in futures if f is not None])

    asyncio.run(group())
    audit.stop()
    assert writers == [writer]  # one write for the whole group
    _trail_ok(audit.directory, 10)


def _wait_for_zeros_ahead(audit: AuditLog) -> Path:
    (path,) = segments(audit.directory)
    for _ in range(500):  # the writer thread writes them just after start
        if path.stat().st_size >= audit_log.PREFILL:
            return path
        threading.Event().wait(0.01)
    raise AssertionError("no zeros were written ahead of the end")


def test_zeros_are_written_ahead_of_the_end_and_cut_off_at_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_log, "PREFILL", 4096)
    audit = AuditLog(tmp_path / "audit", fsync=True)
    audit.start()
    path = _wait_for_zeros_ahead(audit)

    async def run() -> None:
        for i in range(100):  # about 3 kB of entries: well past the first 4 kB of zeros
            future = audit.commit({"n": i, "pad": "x" * 20}, alone=i % 2 == 0)
            if future is not None:
                await future
        assert path.read_bytes().endswith(b"\0")  # still zeros ahead while it runs
        assert [e["n"] for e in _events(audit.directory)] == list(range(100))

    asyncio.run(run())
    audit.stop()
    data = path.read_bytes()
    assert data.endswith(b"}\n") and b"\0" not in data
    _trail_ok(audit.directory, 100)


def test_a_segment_left_with_its_zeros_verifies_and_data_after_them_does_not(
    tmp_path: Path,
) -> None:
    audit = AuditLog(tmp_path / "audit", fsync=True)
    audit.start()
    path = _wait_for_zeros_ahead(audit)

    async def run() -> None:
        for i in range(3):
            assert audit.commit({"n": i}, alone=True) is None

    asyncio.run(run())
    crashed = path.read_bytes()  # as a crash would leave it: entries, then zeros
    audit.stop()
    assert crashed.rstrip(b"\0") == path.read_bytes() and len(crashed) > len(path.read_bytes())
    path.write_bytes(crashed)
    _trail_ok(audit.directory, 3)

    stray = bytearray(crashed)
    stray[-10:-9] = b"x"  # something written after the zeros that end the trail
    path.write_bytes(bytes(stray))
    count, problems = verify_trail(audit.directory)
    assert count == 3 and len(problems) == 1 and "after the zeros" in problems[0]


def test_a_line_still_being_written_is_not_read_except_when_verifying(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit", fsync=False)
    audit.start()

    async def run() -> None:
        for i in range(2):
            assert audit.commit({"n": i}, alone=True) is None

    asyncio.run(run())
    audit.stop()
    (path,) = segments(audit.directory)
    complete = path.read_bytes()
    half = complete.splitlines(keepends=True)[1][:40]
    for tail in (half, half + bytes(64)):  # a write under way: at the end, or over zeros
        path.write_bytes(complete + tail)
        assert [e["n"] for e in _events(audit.directory)] == [0, 1]
        assert verify_trail(audit.directory)[1], tail  # verify reports the torn line


# --- a segment left by a crash -----------------------------------------------------------

_CRASHING_WRITER = """
import asyncio, sys, time
from pathlib import Path
from strongroom.audit.log import AuditLog, segments

audit = AuditLog(Path(sys.argv[1]), fsync=True)
audit.start()

async def run() -> None:
    for i in range(20):
        assert audit.commit({"n": i}, alone=True) is None
        future = audit.commit({"n": i, "grouped": True}, alone=False)
        assert future is not None
        await future

asyncio.run(run())
(path,) = segments(audit.directory)
while path.stat().st_size < 1 << 20:  # the zeros written ahead
    time.sleep(0.01)
print("ready", flush=True)
time.sleep(60)  # killed here, without stop()
"""


def _crash_a_writer(directory: Path) -> Path:
    """A real writer in a child process that commits 40 events and is killed (SIGKILL)
    while its zeros are written ahead; its segment."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    finally:
        child.kill()
        child.wait()
    (path,) = segments(directory)
    return path


def test_the_next_start_cuts_the_zeros_a_crashed_writer_left(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    crashed = _crash_a_writer(directory)
    left = crashed.read_bytes()
    assert left.endswith(bytes(4096)) and len(left) >= audit_log.PREFILL
    _trail_ok(directory, 40)

    audit = AuditLog(directory, fsync=True)
    audit.start()
    try:
        assert crashed.read_bytes() == left.rstrip(b"\0")
        assert crashed.read_bytes().endswith(b"}\n")
        _trail_ok(directory, 40)

        async def more() -> None:
            assert audit.commit({"n": "after"}, alone=True) is None

        asyncio.run(more())
    finally:
        audit.stop()
    _trail_ok(directory, 41)


def test_a_start_leaves_the_zeros_of_segments_live_writers_hold(tmp_path: Path) -> None:
    # Two workers of one server: the second starts while the first writes.
    first = AuditLog(tmp_path / "audit", fsync=True)
    first.start()
    path = _wait_for_zeros_ahead(first)
    second = AuditLog(tmp_path / "audit", fsync=True)
    second.start()
    try:
        assert path.read_bytes().endswith(bytes(4096))

        async def run() -> None:
            for i in range(5):
                assert first.commit({"n": i}, alone=True) is None
                assert second.commit({"n": i}, alone=True) is None

        asyncio.run(run())
    finally:
        first.stop()
        second.stop()
    _trail_ok(tmp_path / "audit", 10)


def test_a_start_leaves_the_zeros_of_another_hosts_segments(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    directory.mkdir()
    elsewhere = directory / f"20250101T000000Z-not-{socket.gethostname()}-42-0123abcd.log"
    elsewhere.write_bytes(bytes(4096))  # its host may still write it
    audit = AuditLog(directory, fsync=False)
    audit.start()
    audit.stop()
    assert elsewhere.read_bytes() == bytes(4096)


def test_a_start_passes_over_a_segment_compressed_since_it_was_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A running server compresses a closed segment (an admin command's) between this
    # start's listing of the directory and its opening of the file: the .log is gone.
    directory = tmp_path / "audit"
    directory.mkdir()
    gone = directory / f"20250101T000000Z-{socket.gethostname()}-42-0123abcd.log"
    listed = audit_log.segments
    monkeypatch.setattr(audit_log, "segments", lambda d: [*listed(d), gone])
    audit = AuditLog(directory, fsync=False)
    audit.start()
    audit.stop()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
