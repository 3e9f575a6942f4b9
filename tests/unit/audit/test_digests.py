"""Signed digests: written at each interval and at stop, and what `verify` finds with them — a
cut tail, a removed segment, a removed digest, a changed digest — while a segment written
past its last digest is fine."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from strongroom.audit.digests import DIGESTS, digest_files, read_digest
from strongroom.audit.lifecycle import Lifecycle
from strongroom.audit.log import AuditLog
from strongroom.audit.segments import chain_hash, segments
from strongroom.audit.signing import (
    KEY_FILE,
    PUBLIC_KEYS,
    current_public_key,
    load_public_keys,
    load_signer,
)
from strongroom.audit.verify import verify
from strongroom.keystores.filekey import FileRootKey

pytestmark = pytest.mark.unit


def _writer(directory: Path, root: FileRootKey, **settings: float) -> AuditLog:
    audit = AuditLog(
        directory,
        fsync=False,
        lifecycle=Lifecycle(compress=False, **settings),  # type: ignore[arg-type]
        signer=load_signer(directory, root),
    )
    audit.start()
    return audit


def _commit(audit: AuditLog, count: int, start: int = 0) -> None:
    async def run() -> None:
        for n in range(start, start + count):
            assert audit.commit({"n": n, "pad": "x" * 200}, alone=True) is None

    asyncio.run(run())


@pytest.fixture
def root(tmp_path: Path) -> FileRootKey:
    return FileRootKey.create(tmp_path / "root.key")


@pytest.fixture
def stopped(tmp_path: Path, root: FileRootKey) -> Path:
    """An audit directory whose writer wrote 40 events and stopped cleanly."""
    directory = tmp_path / "audit"
    audit = _writer(directory, root)
    _commit(audit, 40)
    audit.stop()
    return directory


def _problems(directory: Path) -> list[str]:
    return verify(directory).problems


def test_a_clean_stop_writes_a_final_digest_naming_the_segment_length(stopped: Path) -> None:
    (segment,) = segments(stopped)
    (path,) = digest_files(stopped)
    body = read_digest(path).body
    assert body["final"] is True and body["sequence"] == 1
    assert body["previousDigestHashValue"] is None
    (entry,) = body["logFiles"]
    assert entry["file"] == segment.name
    assert entry["length"] == segment.stat().st_size and entry["closed"] is True
    report = verify(stopped)
    assert (report.events, report.digests, report.problems) == (40, 1, [])


def test_digests_are_written_at_each_interval_chained_to_the_one_before(
    tmp_path: Path, root: FileRootKey
) -> None:
    audit = _writer(tmp_path / "audit", root, digest_seconds=0.1)
    try:
        _commit(audit, 5)
        deadline = time.monotonic() + 10
        while len(digest_files(audit.directory)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        _commit(audit, 5, start=5)  # past the last digest: fine while it is written
        assert len(digest_files(audit.directory)) >= 2
        assert _problems(audit.directory) == []
    finally:
        audit.stop()
    first, second, *_ = (read_digest(p) for p in digest_files(audit.directory))
    assert second.body["previousDigestFile"] == first.file
    assert second.body["previousDigestHashValue"] == first.sha256
    assert verify(audit.directory).problems == []


def test_half_a_segment_cut_off_fails_verify_naming_the_segment(stopped: Path) -> None:
    # Measured on issue 16: this passed verify before digests existed.
    (segment,) = segments(stopped)
    lines = segment.read_bytes().splitlines(keepends=True)
    segment.write_bytes(b"".join(lines[: len(lines) // 2]))
    (problem,) = _problems(stopped)
    assert problem.startswith(f"{segment.name}: cut tail"), problem


def test_a_tail_cut_and_written_again_does_not_match_the_digest(stopped: Path) -> None:
    # The last line replaced by another, correctly chained: only the digest can tell.
    (segment,) = segments(stopped)
    lines = segment.read_bytes().splitlines(keepends=True)
    _, prev, body = lines[-1].rstrip(b"\n").split(b" ", 2)
    body = body.replace(b'"n":39', b'"n":93')
    forged = f"{chain_hash(prev.decode(), body)} {prev.decode()} ".encode() + body + b"\n"
    segment.write_bytes(b"".join(lines[:-1]) + forged)
    (problem,) = _problems(stopped)
    assert problem.startswith(f"{segment.name}: does not match digest"), problem


def _several_segments(audit: AuditLog, count: int) -> None:
    """Events past ``segment_bytes`` (4096), then a wait for the roll-over, ``count`` times."""
    for i in range(count):
        before = audit.segment
        _commit(audit, 20, start=20 * i)
        deadline = time.monotonic() + 10
        while audit.segment == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert audit.segment != before


def test_a_removed_segment_is_named(tmp_path: Path, root: FileRootKey) -> None:
    directory = tmp_path / "audit"
    audit = _writer(directory, root, segment_bytes=4096)
    _several_segments(audit, 3)
    audit.stop()
    paths = segments(directory)
    assert len(paths) >= 3
    paths[1].unlink()
    problems = _problems(directory)
    assert any(p.startswith(f"{paths[1].name}: missing segment") for p in problems), problems


def test_the_last_segment_removed_is_named_by_the_final_digest(stopped: Path) -> None:
    (segment,) = segments(stopped)
    segment.unlink()
    (problem,) = _problems(stopped)
    assert problem.startswith(f"{segment.name}: missing segment (digest"), problem


def test_a_removed_digest_is_named(tmp_path: Path, root: FileRootKey) -> None:
    directory = tmp_path / "audit"
    audit = _writer(directory, root, digest_seconds=0.05)
    deadline = time.monotonic() + 10
    while len(digest_files(directory)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    audit.stop()
    files = digest_files(directory)
    files[1].unlink()
    (problem,) = _problems(directory)
    assert problem.startswith(f"{DIGESTS}/{files[1].name}: missing digest"), problem


def test_a_changed_digest_has_a_bad_signature(stopped: Path) -> None:
    (path,) = digest_files(stopped)
    body, signature, _ = path.read_bytes().split(b"\n")
    changed = orjson.loads(body)
    changed["logFiles"][0]["length"] //= 2  # vouch for half, to hide a cut
    path.write_bytes(orjson.dumps(changed) + b"\n" + signature + b"\n")
    problems = _problems(stopped)
    assert problems == [f"{DIGESTS}/{path.name}: bad signature (the digest was changed or forged)"]


def test_a_digest_signed_by_a_key_not_trusted_fails(stopped: Path, tmp_path: Path) -> None:
    other = FileRootKey.create(tmp_path / "other.key")
    stranger = load_signer(tmp_path / "elsewhere", other)
    trusted = load_public_keys(current_public_key(tmp_path / "elsewhere")[1])
    assert stranger.fingerprint in trusted
    problems = verify(stopped, trusted).problems
    assert len(problems) == 1 and "bad signature (signed by key" in problems[0]
    own = load_public_keys(current_public_key(stopped)[1])
    assert verify(stopped, own).problems == []


def test_the_signing_key_is_stored_wrapped_and_kept_across_starts(
    tmp_path: Path, root: FileRootKey
) -> None:
    directory = tmp_path / "audit"
    signer = load_signer(directory, root)
    stored = orjson.loads((directory / KEY_FILE).read_bytes())
    assert set(stored) == {"version", "algorithm", "fingerprint", "wrapped"}
    raw = signer._key.private_bytes_raw()
    assert raw not in (directory / KEY_FILE).read_bytes()
    assert load_signer(directory, root).fingerprint == signer.fingerprint
    fp, pem = current_public_key(directory)
    assert fp == signer.fingerprint and pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert (directory / PUBLIC_KEYS / f"{fp}.pem").read_bytes() == pem


def test_a_root_key_that_does_not_unwrap_the_signing_key_gets_a_new_one(
    stopped: Path, tmp_path: Path
) -> None:
    old = current_public_key(stopped)[0]
    new = load_signer(stopped, FileRootKey.create(tmp_path / "replaced.key"))
    assert new.fingerprint != old
    assert {old, new.fingerprint} <= {p.stem for p in (stopped / PUBLIC_KEYS).glob("*.pem")}
    assert verify(stopped).problems == []  # old digests still verify with the old key


_CRASHING_WRITER = """
import asyncio, sys, time
from pathlib import Path
from strongroom.audit.digests import digest_files
from strongroom.audit.lifecycle import Lifecycle
from strongroom.audit.log import AuditLog
from strongroom.audit.signing import load_signer
from strongroom.keystores.filekey import FileRootKey

directory = Path(sys.argv[1])
signer = load_signer(directory, FileRootKey(Path(sys.argv[2])))
audit = AuditLog(directory, fsync=True, lifecycle=Lifecycle(digest_seconds=0.05), signer=signer)
audit.start()

async def run() -> None:
    for i in range(30):
        assert audit.commit({"n": i}, alone=True) is None

asyncio.run(run())
while len(digest_files(directory)) < 2:
    time.sleep(0.01)
asyncio.run(run())  # past the last digest, then killed
print("ready", flush=True)
time.sleep(60)
"""


def test_a_writer_killed_without_a_final_digest_verifies_before_and_after_the_next_start(
    tmp_path: Path, root: FileRootKey
) -> None:
    directory = tmp_path / "audit"
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, str(directory), str(tmp_path / "root.key")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    finally:
        child.kill()
        child.wait()
    assert not read_digest(digest_files(directory)[-1]).body["final"]
    report = verify(directory)
    assert (report.events, report.problems) == (60, [])
    audit = _writer(directory, root)  # cuts the zeros the killed writer left
    audit.stop()
    report = verify(directory)
    assert (report.events, report.problems) == (60, [])
