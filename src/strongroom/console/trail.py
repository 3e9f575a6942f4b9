"""The audit trail as the console shows it: the newest events, read on from where the last
read stopped, and what a principal may see of them.

There is no KMS API that reads the trail (in AWS it is CloudTrail's LookupEvents), so the
console applies a rule of its own, the narrowest that still serves: an account's root sees
every event of its account; any other principal sees only the events it made itself.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from strongroom.audit.trail import TrailReader

KEEP = 10_000  # newest events held per process for the console's pages (~1-2 kB each)


@dataclass(frozen=True, slots=True)
class Viewer:
    arn: str  # the signed-in principal
    account: str

    @property
    def is_root(self) -> bool:
        return self.arn == f"arn:aws:iam::{self.account}:root"


@dataclass(frozen=True, slots=True)
class EventFilter:
    event_name: str = ""
    principal: str = ""
    resource: str = ""
    source: str = ""  # eventSource, e.g. kms.amazonaws.com
    errors_only: bool = False
    since: str = ""  # ISO date or date-time prefix, compared as text (eventTime is ISO UTC)
    until: str = ""

    def matches(self, event: dict[str, Any]) -> bool:
        if (
            self.event_name
            and self.event_name.lower() not in str(event.get("eventName", "")).lower()
        ):
            return False
        if self.principal and self.principal not in _arn(event):
            return False
        if self.resource and not any(self.resource in r.get("ARN", "") for r in _resources(event)):
            return False
        if self.source and self.source != event.get("eventSource"):
            return False
        if self.errors_only and "errorCode" not in event:
            return False
        when = str(event.get("eventTime", ""))
        if self.since and when < self.since:
            return False
        return not (self.until and when[: len(self.until)] > self.until)


class Trail:
    """The newest KEEP events of one audit directory (every worker's segments); intent
    records (``audit/segments.py``) are not events and are not shown."""

    def __init__(self, directory: Path) -> None:
        self._reader = TrailReader(directory)  # events only: no intent records
        self._events: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Read the events written since the last read (blocking: file I/O)."""
        with self._lock:
            if not self._reader.directory.is_dir():
                return
            for record in self._reader.read():
                self._events.append(record.event())

    def visible(self, viewer: Viewer, where: EventFilter, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` events ``viewer`` may see that match ``where``, newest first."""
        found: list[dict[str, Any]] = []
        with self._lock:
            snapshot = list(self._events)
        for event in reversed(snapshot):
            if _may_see(viewer, event) and where.matches(event):
                found.append(event)
                if len(found) >= limit:
                    break
        return found


def _may_see(viewer: Viewer, event: dict[str, Any]) -> bool:
    """An account's root sees its principals' events and the changes made to the account
    without a request of its own (``recipientAccountId``: a scheduled job's, an operator's
    admin command); any other principal its own events."""
    identity = event.get("userIdentity") or {}
    if viewer.is_root:
        return viewer.account in (identity.get("accountId"), event.get("recipientAccountId"))
    return _arn(event) == viewer.arn


def caller_of(event: dict[str, Any]) -> str:
    """Who made the call: the principal's ARN; AWS Internal for a scheduled job's change;
    ``USER@HOST`` for an operator's admin command; "(not signed)" for a request that named
    no principal."""
    identity = event.get("userIdentity") or {}
    found = identity.get("arn") or identity.get("invokedBy") or identity.get("principalId")
    return str(found) if found else "(not signed)"


def _arn(event: dict[str, Any]) -> str:
    identity = event.get("userIdentity") or {}
    return str(identity.get("arn", ""))


def _resources(event: dict[str, Any]) -> Iterable[dict[str, str]]:
    return event.get("resources") or ()


def hourly_counts(
    events: Iterable[dict[str, Any]], now: datetime, hours: int = 24
) -> list[tuple[str, int, int]]:
    """(hour label, successful calls, failed calls) for each of the last ``hours`` hours,
    oldest first."""
    slots = [[0, 0] for _ in range(hours)]
    end = now.replace(minute=0, second=0, microsecond=0)
    for event in events:
        try:
            when = datetime.fromisoformat(str(event["eventTime"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            continue
        back = int((end - when.replace(minute=0, second=0, microsecond=0)).total_seconds() // 3600)
        if 0 <= back < hours:
            slots[hours - 1 - back][1 if "errorCode" in event else 0] += 1
    labels = [(end.hour - (hours - 1 - i)) % 24 for i in range(hours)]
    return [(f"{h:02d}:00", ok, failed) for h, (ok, failed) in zip(labels, slots, strict=True)]
