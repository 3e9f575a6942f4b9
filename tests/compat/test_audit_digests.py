"""The audit trail of a real server, end to end: segments roll over and are compressed while it
serves, digests are signed at each interval and at stop, ``audit verify`` passes with the
exported public key and names a cut segment or a removed one, ``audit events`` reads the
compressed segments, and ``audit export`` writes CloudTrail log files."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import run_in_process, start_server, stop_server

from ._support import audit_events, eventually

pytestmark = pytest.mark.compat

ENCRYPTS = 30


def _audit(server: Any, *args: str) -> Any:
    return run_in_process(["audit", *args, "--data-dir", str(server.data_dir)], check=False)


def test_a_served_trail_rolls_over_compresses_signs_verifies_and_exports(tmp_path: Path) -> None:
    config = tmp_path / "strongroom.toml"
    config.write_text("audit_digest_seconds = 0.3\naudit_segment_bytes = 4096\n")
    server = start_server(tmp_path / "data", None, "--config", str(config))
    audit = server.data_dir / "audit"
    try:
        kms = server.client()
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        for i in range(ENCRYPTS):
            kms.encrypt(KeyId=key, Plaintext=f"secret {i}".encode())
        eventually(lambda: _check(len(list(audit.glob("*.log.gz"))) >= 2), 20)
        eventually(lambda: _check(len(list((audit / "digests").glob("*.json"))) >= 2), 20)
        running = _audit(server, "verify")  # while it writes: past its last digest is fine
        assert running.returncode == 0, running.stdout
        pem = _audit(server, "public-key").stdout
        assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    finally:
        stop_server(server)
    (tmp_path / "audit.pem").write_text(pem)

    result = _audit(server, "verify", "--public-key", str(tmp_path / "audit.pem"))
    assert result.returncode == 0, result.stdout
    assert re.search(r"digests, 0 problems$", result.stdout.strip()), result.stdout
    _, events = audit_events(server, "--event-name", "Encrypt")
    assert len(events) == ENCRYPTS  # read from compressed segments and the last plain one

    out = tmp_path / "cloudtrail"
    exported = _audit(server, "export", "--format", "cloudtrail", "--output", str(out))
    assert exported.returncode == 0, exported.stderr
    records = []
    for path in out.rglob("*.json.gz"):
        relative = str(path.relative_to(out))
        assert re.fullmatch(
            r"AWSLogs/111122223333/CloudTrail/us-east-1/\d{4}/\d{2}/\d{2}/"
            r"111122223333_CloudTrail_us-east-1_\d{8}T\d{4}Z_[A-Za-z0-9]{16}\.json\.gz",
            relative,
        ), relative
        records += json.loads(gzip.decompress(path.read_bytes()))["Records"]
    assert sum(r["eventName"] == "Encrypt" for r in records) == ENCRYPTS
    assert all(r["recipientAccountId"] == "111122223333" for r in records)

    # The final digest of the clean stop names the last segment.
    final = (sorted((audit / "digests").glob("*.json"))[-1]).read_bytes().split(b"\n")[0]
    assert json.loads(final)["final"] is True

    # A segment cut in half (measured on issue 16: this passed verify before): named.
    cut = sorted(audit.glob("*.log.gz"))[0]
    original = cut.read_bytes()
    whole = gzip.decompress(original)
    cut.write_bytes(gzip.compress(whole[: len(whole) // 2]))
    result = _audit(server, "verify")
    assert result.returncode == 1
    assert f"{cut.name}: cut tail" in result.stdout, result.stdout
    cut.write_bytes(original)

    # A compressed segment removed: named.
    middle = sorted(audit.glob("*.log.gz"))[1]
    shutil.move(middle, tmp_path / middle.name)
    result = _audit(server, "verify")
    assert result.returncode == 1
    assert f"{middle.name.removesuffix('.gz')}: missing segment" in result.stdout, result.stdout
    shutil.move(tmp_path / middle.name, middle)
    assert _audit(server, "verify").returncode == 0


def _check(condition: bool) -> None:
    assert condition


def test_public_key_and_verify_say_what_is_missing_or_wrong(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "audit").mkdir(parents=True)  # a trail no server with digests has written
    out = run_in_process(["audit", "public-key", "--data-dir", str(data)], check=False)
    assert out.returncode == 2
    assert out.stderr.startswith(f"strongroom: no audit signing key at {data / 'audit'}")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    out = run_in_process(
        ["audit", "verify", "--data-dir", str(data), "--public-key", str(not_pem)], check=False
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"strongroom: --public-key {not_pem}: no Ed25519 public key "
        "(-----BEGIN PUBLIC KEY-----) in it"
    )
