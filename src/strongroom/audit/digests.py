"""Digest files: signed statements of how long each segment was and how its chain ended, as
CloudTrail's log file integrity validation makes them.

Each writer (one process's run of the audit log) writes a chain of digests into
``<audit dir>/digests/``, named ``<writer>.<sequence>.json`` (sequence from 000001): one every
``audit_digest_seconds``, one just before a segment is removed by retention, and a final one
at a clean stop. A digest file is two lines::

    <body JSON> LF {"digestSignature": "<hex>"} LF

The signature is Ed25519 over the exact bytes of the body line. The body holds:

``digestVersion`` 1; ``writer``; ``sequence``; ``digestStartTime`` and ``digestEndTime``
(ISO 8601, UTC) the period it covers; ``final`` (true for the digest of a clean stop);
``previousDigestFile`` and ``previousDigestHashValue`` (SHA-256 of the whole previous
digest file, hex; both null in a writer's first digest), ``previousDigestHashAlgorithm``;
``logFiles``, one per segment written since the previous digest: ``file`` (the segment's
``.log`` name; it may have been compressed since), ``length`` (bytes of whole lines),
``endHash`` (the chain hash of the line that ends at ``length``; 64 zeros for none) and
``closed`` (rolled over or stopped: nothing more is written to it); ``removedFiles``,
segments retention removes right after this digest, each with its ``file``, ``length`` and
``endHash``; ``digestPublicKeyFingerprint`` (``audit/signing.py``) and
``digestSignatureAlgorithm`` ("Ed25519").
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from strongroom.audit.signing import Signer, sync_directory

DIGESTS = "digests"
VERSION = 1
_SUFFIX = ".json"


@dataclass(frozen=True, slots=True)
class SegmentState:
    """Where a segment stands: its name, the bytes of whole lines it holds, the hash of its
    last line, and whether it is closed."""

    name: str
    length: int
    end_hash: str
    closed: bool = False

    def entry(self) -> dict[str, Any]:
        return {
            "file": self.name + ".log",
            "length": self.length,
            "endHash": self.end_hash,
            "closed": self.closed,
        }


def digest_name(writer: str, seq: int) -> str:
    return f"{writer}.{seq:06d}{_SUFFIX}"


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DigestChain:
    """The digests of one writer: each names the one before it by hash. Used from one
    thread at a time (the audit log's housekeeping thread, then ``stop``)."""

    def __init__(self, directory: Path, writer: str, signer: Signer) -> None:
        self.directory = directory / DIGESTS
        self.writer = writer
        self.signer = signer
        self._seq = 0
        self._previous: tuple[str, str] | None = None  # file name, SHA-256 hex
        self._since = time.time()  # the first digest covers the writer's life from here

    def write(
        self,
        now: float,
        segments: list[SegmentState],
        *,
        removed: Sequence[SegmentState] = (),
        final: bool = False,
    ) -> Path:
        """Sign and write the next digest, durably (rename, then sync of the directory);
        raises OSError when it cannot."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        seq = self._seq + 1
        body = {
            "digestVersion": VERSION,
            "writer": self.writer,
            "sequence": seq,
            "digestStartTime": _iso(self._since),
            "digestEndTime": _iso(now),
            "final": final,
            "previousDigestFile": None if self._previous is None else self._previous[0],
            "previousDigestHashValue": None if self._previous is None else self._previous[1],
            "previousDigestHashAlgorithm": "SHA-256",
            "logFiles": [s.entry() for s in segments],
            "removedFiles": [s.entry() for s in removed],
            "digestPublicKeyFingerprint": self.signer.fingerprint,
            "digestSignatureAlgorithm": "Ed25519",
        }
        line = orjson.dumps(body)
        signature = orjson.dumps({"digestSignature": self.signer.sign(line).hex()})
        data = line + b"\n" + signature + b"\n"
        name = digest_name(self.writer, seq)
        path = self.directory / name
        tmp = self.directory / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        sync_directory(self.directory)
        self._seq, self._previous, self._since = seq, (name, hashlib.sha256(data).hexdigest()), now
        return path


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Digest:
    """A digest file as read: its name, raw bytes, the signed body line and its fields,
    and the signature (b"" when missing)."""

    file: str
    data: bytes
    signed: bytes
    body: dict[str, Any]
    signature: bytes

    @property
    def writer(self) -> str:
        return str(self.body["writer"])

    @property
    def seq(self) -> int:
        return int(self.body["sequence"])

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def digest_files(directory: Path) -> list[Path]:
    folder = directory / DIGESTS
    return sorted(folder.glob("*" + _SUFFIX)) if folder.is_dir() else []


def read_digest(path: Path) -> Digest:
    """A digest file; ValueError says what is malformed in it."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if len(lines) != 3 or lines[2] != b"":
        raise ValueError("not two lines (the digest and its signature)")
    try:
        body = orjson.loads(lines[0])
        signature = bytes.fromhex(orjson.loads(lines[1])["digestSignature"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed ({exc})") from None
    if not isinstance(body, dict) or body.get("digestVersion") != VERSION:
        raise ValueError(f"not a digest of version {VERSION}")
    for field, kind in (("writer", str), ("sequence", int), ("logFiles", list)):
        if not isinstance(body.get(field), kind):
            raise ValueError(f"no {field}")
    return Digest(path.name, data, lines[0], body, signature)
