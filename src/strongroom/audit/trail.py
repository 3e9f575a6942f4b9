"""Reading a whole trail while servers write it: every segment's records in time order,
then, read after read, the records written since (``strongroom audit events --follow``)."""

from __future__ import annotations

from pathlib import Path

from strongroom.audit.segments import COMPRESSED, Record, name_of, read_segment, segments


class TrailReader:
    """Reads the segments of one audit directory from where the last read stopped.

    Each ``read`` returns the records completed since the one before (the first: every
    record), in time order: the events, and the intent records too when ``intents``
    (``audit/segments.py``; skipped by default: they are no events). A last line still
    being written (no newline yet, or zeros where the rest will go) is left for a later
    ``read`` that finds it whole; a segment that appears (a new server or worker, a
    roll-over) is read from its start, and one compressed since the last read is read on
    from where it was."""

    def __init__(self, directory: Path, *, intents: bool = False) -> None:
        self.directory = directory
        self.intents = intents
        self._reached: dict[str, tuple[int, int]] = {}  # segment name: (offset, next line)
        self._finished: set[str] = set()  # compressed segments read to their end

    def read(self) -> list[Record]:
        records: list[Record] = []
        for path in segments(self.directory):
            name = name_of(path)
            if name in self._finished:
                continue  # closed: nothing more comes (and gzip cannot seek without reading)
            offset, line = self._reached.get(name, (0, 1))
            try:
                for record in read_segment(path, offset=offset, line=line):
                    if self.intents or not record.is_intent:
                        records.append(record)
                    offset, line = record.end, record.line + 1
            except FileNotFoundError:  # removed since it was listed: nothing more to read
                continue
            self._reached[name] = (offset, line)
            if path.name.endswith(COMPRESSED):
                self._finished.add(name)
        records.sort(key=lambda record: record.time)  # stable: each segment is in order
        return records
