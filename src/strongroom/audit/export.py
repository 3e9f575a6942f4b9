"""``audit export --format cloudtrail``: the trail as CloudTrail log files.

CloudTrail delivers a trail's events to S3 as gzip-compressed JSON objects ``{"Records":
[event, ...]}`` under ``AWSLogs/<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/`` named
``<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<unique string>.json.gz``, about one file per
account, Region and five minutes. The events are already CloudTrail records
(``audit/events.py``); the export adds ``recipientAccountId`` (the account of the key the
event is about, else the caller's) as CloudTrail does, and gives an event of a request that
failed before naming its Region (unauthenticated) the Region ``us-east-1``. A tree written
this way can be copied to a bucket and read where CloudTrail's files are read (Athena, log
tooling that reads a CloudTrail bucket).

Each file is written beside its final name and renamed into place once whole. A segment
exported whole (all its events in the time range, and closed: no process writes it any
more) is marked exported, which allows retention to remove it (``audit/lifecycle.py``).
Intent records (``audit/segments.py``) are not events and are left out; a segment whose
other records were all exported counts as exported whole.
"""

from __future__ import annotations

import gzip
import os
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from strongroom.audit.digests import SegmentState
from strongroom.audit.lifecycle import closed_segments, mark_exported
from strongroom.audit.segments import GENESIS, name_of, read_segment, segments

PERIOD = 300  # seconds of events per file, as CloudTrail delivers about every 5 minutes
MAX_RECORDS = 10_000  # records per file at most
# The Region of an event whose request never named one (it failed before authentication):
# CloudTrail records every event in a Region, the endpoint's.
DEFAULT_REGION = "us-east-1"
_UNIQUE = string.ascii_letters + string.digits


@dataclass(slots=True)
class ExportSummary:
    files: list[Path] = field(default_factory=list)
    events: int = 0
    segments_marked: int = 0


def log_file_path(account: str, region: str, when: float) -> Path:
    """Where CloudTrail puts a log file of ``account`` and ``region`` delivered at
    ``when`` (the unique part at random)."""
    t = datetime.fromtimestamp(when, UTC)
    unique = "".join(secrets.choice(_UNIQUE) for _ in range(16))
    name = f"{account}_CloudTrail_{region}_{t:%Y%m%dT%H%MZ}_{unique}.json.gz"
    return Path("AWSLogs", account, "CloudTrail", region, f"{t:%Y}", f"{t:%m}", f"{t:%d}", name)


class _LogFile:
    """One CloudTrail log file being written: records streamed into a gzip stream."""

    def __init__(self, output: Path, relative: Path) -> None:
        self.path = output / relative
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name("." + self.path.name + ".tmp")
        self._raw = self._tmp.open("wb")
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw)
        self._gz.write(b'{"Records":[')
        self.count = 0

    def add(self, record: dict[str, Any]) -> None:
        self._gz.write((b"," if self.count else b"") + orjson.dumps(record))
        self.count += 1

    def close(self) -> Path:
        self._gz.write(b"]}")
        self._gz.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self._tmp, self.path)
        return self.path


def _account_of(event: dict[str, Any], default: str) -> str:
    if event.get("recipientAccountId"):
        return str(event["recipientAccountId"])
    for resource in event.get("resources") or ():
        if resource.get("accountId"):
            return str(resource["accountId"])
    identity = event.get("userIdentity") or {}
    return str(identity.get("accountId") or default)


def export_cloudtrail(
    directory: Path,
    output: Path,
    *,
    account: str,
    since: float | None = None,
    until: float | None = None,
) -> ExportSummary:
    """Write the events of ``directory`` between ``since`` and ``until`` (epoch seconds,
    both included) as CloudTrail log files under ``output``; ``account``: the account of an
    event that names none. Raises OSError when a file cannot be written."""
    summary = ExportSummary()
    paths = segments(directory)
    closed = closed_segments(paths)
    for path in paths:
        open_files: dict[tuple[str, str, int], _LogFile] = {}
        whole = True
        length, end_hash = 0, GENESIS
        try:
            for record in read_segment(path):
                length, end_hash = record.end, record.hash
                if record.is_intent:  # not a CloudTrail event: no log file holds it
                    continue
                when = record.time
                if (since is not None and when < since) or (until is not None and when > until):
                    whole = False
                    continue
                event = record.event()
                recipient = _account_of(event, account)
                event.setdefault("recipientAccountId", recipient)
                if not event.get("awsRegion"):  # a request that never named its Region
                    event["awsRegion"] = DEFAULT_REGION
                bucket = (recipient, str(event["awsRegion"]), int(when // PERIOD))
                log_file = open_files.get(bucket)
                if log_file is None:
                    relative = log_file_path(bucket[0], bucket[1], bucket[2] * PERIOD)
                    log_file = open_files[bucket] = _LogFile(output, relative)
                log_file.add(event)
                summary.events += 1
                if log_file.count >= MAX_RECORDS:
                    summary.files.append(open_files.pop(bucket).close())
        finally:
            for log_file in open_files.values():
                summary.files.append(log_file.close())
        if whole and name_of(path) in closed:
            mark_exported(directory, SegmentState(name_of(path), length, end_hash, True), output)
            summary.segments_marked += 1
    return summary
