"""The segments' life cycle: roll-over by size and age, compression of closed segments (read by
the trail reader and by verify), retention of exported segments only, and CloudTrail export."""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import time
from pathlib import Path

import orjson
import pytest

from strongroom.audit.digests import digest_files, read_digest
from strongroom.audit.export import export_cloudtrail
from strongroom.audit.lifecycle import EXPORTED, Lifecycle, compress_closed
from strongroom.audit.log import AuditLog
from strongroom.audit.segments import COMPRESSED, SUFFIX, name_of, segments
from strongroom.audit.signing import load_signer
from strongroom.audit.trail import TrailReader
from strongroom.audit.verify import verify
from strongroom.keystores.filekey import FileRootKey

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"


def _writer(directory: Path, **settings: object) -> AuditLog:
    root_path = directory.parent / "root.key"
    root = FileRootKey(root_path) if root_path.exists() else FileRootKey.create(root_path)
    audit = AuditLog(
        directory,
        fsync=True,
        lifecycle=Lifecycle(**settings),  # type: ignore[arg-type]
        signer=load_signer(directory, root),
    )
    audit.start()
    return audit


def _event(n: int, when: float | None = None, region: str = "us-east-1") -> dict[str, object]:
    return {
        "eventVersion": "1.08",
        "eventName": "Encrypt",
        "awsRegion": region,
        "n": n,
        "resources": [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": "arn"}],
        "pad": "x" * 300,  # a line of about 610 bytes: 7 fill 4096
    }


def _commit(audit: AuditLog, numbers: range, region: str = "us-east-1") -> None:
    async def run() -> None:
        for n in numbers:
            assert audit.commit(_event(n, region=region), alone=True) is None

    asyncio.run(run())


def _roll_over(audit: AuditLog, count: int) -> None:
    """7 events, past ``segment_bytes`` (4096), and a wait for the roll-over, ``count``
    times."""
    for i in range(count):
        before = audit.segment
        _commit(audit, range(7 * i, 7 * (i + 1)))
        deadline = time.monotonic() + 10
        while audit.segment == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert audit.segment != before


def _numbers(directory: Path) -> list[int]:
    return [record.event()["n"] for record in TrailReader(directory).read()]


def test_segments_roll_over_by_size_and_all_verify(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    audit = _writer(directory, segment_bytes=4096, compress=False)
    _roll_over(audit, 3)
    audit.stop()
    paths = segments(directory)
    assert [name_of(p)[-6:] for p in paths] == ["000001", "000002", "000003", "000004"]
    assert all(p.stat().st_size < 2 * 4096 for p in paths)
    report = verify(directory)
    assert (report.events, report.segments, report.problems) == (21, 4, [])
    assert _numbers(directory) == list(range(21))


def test_a_segment_rolls_over_by_age_once_it_holds_events(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    audit = _writer(directory, segment_seconds=0.1, compress=False)
    try:
        time.sleep(0.3)
        assert audit.segment.endswith(".000001")  # empty: it stays
        _commit(audit, range(1))
        deadline = time.monotonic() + 10
        while audit.segment.endswith(".000001") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert audit.segment.endswith(".000002")
    finally:
        audit.stop()
    assert verify(directory).problems == []


def _compressed(directory: Path) -> list[Path]:
    return [p for p in segments(directory) if p.name.endswith(COMPRESSED)]


def test_closed_segments_are_compressed_and_still_read_and_verified(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    audit = _writer(directory, segment_bytes=4096)
    _roll_over(audit, 2)
    deadline = time.monotonic() + 10  # the housekeeping pass after each roll-over
    while len(_compressed(directory)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    audit.stop()
    compressed = _compressed(directory)
    assert len(compressed) == 2
    assert gzip.decompress(compressed[0].read_bytes()).count(b"\n") == 7
    assert _numbers(directory) == list(range(14))
    assert verify(directory).problems == []
    assert compress_closed(directory, "") == 1  # the last one, once its writer stopped
    assert all(p.name.endswith(COMPRESSED) for p in segments(directory))
    assert verify(directory).problems == []


def test_a_reader_following_a_segment_reads_on_once_it_is_compressed(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    audit = _writer(directory, segment_bytes=4096, compress=False)
    reader = TrailReader(directory)
    _commit(audit, range(3))
    assert [r.event()["n"] for r in reader.read()] == [0, 1, 2]
    _commit(audit, range(3, 7))  # 7 in all: the segment rolls over
    deadline = time.monotonic() + 10
    while audit.segment.endswith(".000001") and time.monotonic() < deadline:
        time.sleep(0.01)
    while not _compressed(directory) and time.monotonic() < deadline:
        compress_closed(directory, audit.segment)  # unless the housekeeping pass does
        time.sleep(0.01)
    assert len(_compressed(directory)) == 1
    assert [r.event()["n"] for r in reader.read()] == [3, 4, 5, 6]
    audit.stop()


def _age(directory: Path, days: float) -> None:
    """Make every segment look last written ``days`` ago."""
    when = time.time() - days * 86400
    for path in segments(directory):
        os.utime(path, (when, when))


def _run_pass(audit: AuditLog) -> None:
    """A housekeeping pass, once the one after a roll-over (if any) is done."""
    assert audit._housekeeper is not None
    deadline = time.monotonic() + 10
    while not audit._housekeeper.run_pass():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_retention_removes_only_exported_segments(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    audit = _writer(directory, segment_bytes=4096, retention_days=1.0)
    _roll_over(audit, 3)
    closed = [p for p in segments(directory) if name_of(p) != audit.segment]
    # The first two exported (a whole export marks them), the third not.
    summary = export_cloudtrail(directory, tmp_path / "out", account=ACCOUNT)
    assert summary.events == 21 and summary.segments_marked == 3
    (directory / EXPORTED / f"{name_of(closed[2])}.json").unlink()
    _age(directory, 2)
    _run_pass(audit)
    left = [name_of(p) for p in segments(directory)]
    assert left == [name_of(closed[2]), audit.segment]
    audit.stop()
    report = verify(directory)
    assert report.problems == [] and report.removed == 2
    last = read_digest(digest_files(directory)[0])
    assert [e["file"] for e in last.body["removedFiles"]] == [
        name_of(p) + SUFFIX for p in closed[:2]
    ]


def test_retention_removes_unexported_segments_only_when_allowed(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    audit = _writer(directory, segment_bytes=4096, retention_days=1.0)
    _roll_over(audit, 2)
    _age(directory, 2)
    _run_pass(audit)
    assert len(segments(directory)) == 3  # compressed, not removed
    audit.stop()

    allowed = _writer(directory, retention_days=1.0, retention_unexported=True)
    _age(directory, 2)
    _run_pass(allowed)
    assert [name_of(p) for p in segments(directory)] == [allowed.segment]
    allowed.stop()
    report = verify(directory)
    assert report.problems == [] and report.removed == 3


_PATH = re.compile(
    r"AWSLogs/(?P<account>[0-9]{12})/CloudTrail/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>[0-9]{4})/(?P<m>[0-9]{2})/(?P<d>[0-9]{2})/"
    r"(?P=account)_CloudTrail_(?P=region)_(?P=y)(?P=m)(?P=d)T[0-9]{4}Z_[A-Za-z0-9]{16}\.json\.gz"
)


def test_export_writes_cloudtrail_log_files(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    audit = _writer(directory)
    _commit(audit, range(3))
    _commit(audit, range(3, 5), region="eu-west-1")
    _commit(audit, range(5, 6), region="")  # unauthenticated: no Region
    audit.stop()
    out = tmp_path / "out"
    summary = export_cloudtrail(directory, out, account=ACCOUNT)
    assert summary.events == 6 and len(summary.files) == 2
    records: dict[str, list[dict[str, object]]] = {}
    for path in sorted(out.rglob("*.json.gz")):
        match = _PATH.fullmatch(str(path.relative_to(out)))
        assert match, path
        document = orjson.loads(gzip.decompress(path.read_bytes()))
        assert list(document) == ["Records"]
        records[match["region"]] = document["Records"]
    assert [r["n"] for r in records["us-east-1"]] == [0, 1, 2, 5]
    assert [r["n"] for r in records["eu-west-1"]] == [3, 4]
    assert all(r["recipientAccountId"] == ACCOUNT for rs in records.values() for r in rs)
    assert not list(out.rglob(".*.tmp"))


def test_export_since_until_takes_a_time_range_and_marks_no_partial_segment(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "audit"
    audit = _writer(directory)
    _commit(audit, range(3))
    middle = time.time()
    time.sleep(0.01)
    _commit(audit, range(3, 5))
    audit.stop()
    summary = export_cloudtrail(directory, tmp_path / "out", account=ACCOUNT, since=middle)
    assert summary.events == 2 and summary.segments_marked == 0
    summary = export_cloudtrail(directory, tmp_path / "out2", account=ACCOUNT, until=middle)
    assert summary.events == 3 and summary.segments_marked == 0
