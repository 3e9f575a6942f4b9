"""``audit unmatched``: the intent records that no event follows, i.e. the requests that may
have changed state but whose event was never written (the process was killed, or failed,
between the change and its event).

A request that changes state leaves its intent in the trail before it runs and its event
after (``audit/events.py``), both written by the one process that served it, so its event
follows its intent in that process's segments (the next segment when the trail rolled over
in between). The segments are read writer by writer, and an intent is matched by any event
of its writer with its ``requestID`` that follows it: an event of a refused request (with an
``errorCode``) matches too, since a refusal changed nothing. Events are parsed only while
their writer has an intent waiting, so a long trail costs little more than reading it.

An intent younger than ``older_than`` seconds may be of a request still in flight on a
running server (its event not written yet): it is counted apart and not reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strongroom.audit.segments import Record, SegmentName, name_of, read_segment, segments

DEFAULT_GRACE = 60.0  # seconds: an intent younger than this may still be in flight
# Request members that name what a request changes, most telling first (lower camel, as in
# the intent's requestParameters).
_RESOURCE_MEMBERS = (
    "keyId",
    "targetKeyId",
    "aliasName",
    "customKeyStoreId",
    "grantId",
    "name",
    "roleArn",
    "userName",  # the admin commands' (cli/admin_events.py)
    "roleName",
    "accessKeyId",
    "clusterId",
    "accountId",
)

Progress = Callable[[int, int], None]  # (segments read, segments in all)


@dataclass(frozen=True, slots=True)
class Unmatched:
    """One intent record that no event follows."""

    record: Record
    intent: dict[str, Any]

    @property
    def time(self) -> str:
        return datetime.fromtimestamp(self.record.time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def request_id(self) -> str:
        return str(self.intent.get("requestID", ""))

    @property
    def operation(self) -> str:
        return str(self.intent.get("eventName", ""))

    @property
    def caller(self) -> str:
        """The caller's ARN; for a change AWS KMS made on its own (a scheduled job), who
        invoked it (AWS Internal); an admin command's operator (no ARN) by ``USER@HOST``."""
        identity = self.intent.get("userIdentity") or {}
        return str(
            identity.get("arn") or identity.get("invokedBy") or identity.get("principalId") or ""
        )

    @property
    def resource(self) -> str:
        """What the request was about (a key id or ARN, an alias, ...), "" when its
        parameters name nothing (CreateKey)."""
        members = self.intent.get("requestParameters") or {}
        return next((str(members[m]) for m in _RESOURCE_MEMBERS if members.get(m)), "")


@dataclass(slots=True)
class Scan:
    """What ``unmatched_intents`` found."""

    unmatched: list[Unmatched] = field(default_factory=list)
    intents: int = 0  # intent records read (in the time range)
    recent: int = 0  # unmatched but younger than the grace: perhaps still in flight
    segments: int = 0


def unmatched_intents(
    directory: Path,
    *,
    now: float,
    older_than: float = DEFAULT_GRACE,
    since: float | None = None,
    until: float | None = None,
    progress: Progress | None = None,
) -> Scan:
    """The intent records of ``directory``'s trail that no event of their request follows,
    oldest first, of those written between ``since`` and ``until`` (epoch seconds, both
    included) and at least ``older_than`` seconds before ``now``."""
    scan = Scan()
    by_writer = _by_writer(segments(directory))
    total = sum(len(paths) for paths in by_writer.values())
    for paths in by_writer.values():
        waiting: dict[str, Unmatched] = {}  # requestID: the intent with no event yet
        for record in _records(paths):
            if record.is_intent:
                scan.intents += _within(record.time, since, until)
                intent = record.event()
                waiting[str(intent.get("requestID"))] = Unmatched(record, intent)
            elif waiting:
                waiting.pop(str(record.event().get("requestID")), None)
            # An event of a request without an intent (a read, Encrypt) matches nothing.
        for found in waiting.values():
            when = found.record.time
            if not _within(when, since, until):
                continue
            if when > now - older_than:
                scan.recent += 1
            else:
                scan.unmatched.append(found)
        scan.segments += len(paths)
        if progress is not None:
            progress(scan.segments, total)
    scan.unmatched.sort(key=lambda found: found.record.time)
    return scan


def _by_writer(paths: list[Path]) -> dict[str, list[Path]]:
    """The segment files of each writer, in the order it wrote them."""
    writers: dict[str, list[tuple[int, Path]]] = {}
    for path in paths:
        name = SegmentName.parse(name_of(path))
        writers.setdefault(name.writer, []).append((name.seq or 0, path))
    return {w: [path for _, path in sorted(found)] for w, found in writers.items()}


def _records(paths: list[Path]) -> Iterator[Record]:
    for path in paths:
        try:
            yield from read_segment(path)  # a last line still being written is left out
        except FileNotFoundError:  # removed by retention since it was listed
            continue


def _within(when: float, since: float | None, until: float | None) -> bool:
    return (since is None or when >= since) and (until is None or when <= until)
