"""Pagination markers: the one opaque format behind every List operation's NextMarker.

A marker is the URL-safe base64 of ``<kind> <fields>``: the kind names the listing it
belongs to (so a marker of one listing is refused by another), the fields the position
the page ended on. The next page starts *after* that position, so it still continues
when the item the page ended on is deleted meanwhile.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from strongroom.domain.errors import InvalidMarkerException

T = TypeVar("T")
P = TypeVar("P")


def encode_marker(kind: str, *fields: str) -> str:
    """The marker of a position in the listing ``kind``; only the last field may hold a
    space."""
    return base64.urlsafe_b64encode(" ".join((kind, *fields)).encode()).decode()


def decode_marker(marker: str, kind: str, parse: Callable[[str], P]) -> P:
    """The position a marker of the listing ``kind`` names: ``parse`` of the text after
    the kind, which raises ValueError for a position that cannot be.

    Raises InvalidMarkerException for anything that is no such marker.
    """
    try:
        head, _, fields = base64.urlsafe_b64decode(marker.encode()).decode().partition(" ")
        if head != kind:
            raise ValueError(head)
        return parse(fields)
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors too
        raise InvalidMarkerException(f"Invalid marker: {marker}") from None


def encode_moment_marker(kind: str, when: datetime, ident: str) -> str:
    """The marker of a (creation date, id) position; the timestamp keeps every digit."""
    return encode_marker(kind, repr(when.timestamp()), ident)


def decode_moment_marker(
    marker: str, kind: str, valid_id: Callable[[str], bool]
) -> tuple[datetime, str]:
    """The (creation date, id) position of a marker ``encode_moment_marker`` wrote.

    Raises InvalidMarkerException, also when the id fails ``valid_id``.
    """

    def parse(fields: str) -> tuple[datetime, str]:
        stamp, ident = fields.split(" ")
        if not valid_id(ident):
            raise ValueError(ident)
        return datetime.fromtimestamp(float(stamp), UTC), ident

    return decode_marker(marker, kind, parse)


def next_page(
    found: Sequence[T], limit: int, marker_of: Callable[[T], str]
) -> tuple[list[T], str | None]:
    """``found`` (up to ``limit`` + 1 items, read one past the page to learn whether
    another follows) cut to a page, and the marker of the next page if there is one."""
    if len(found) > limit:
        return list(found[:limit]), marker_of(found[limit - 1])
    return list(found), None
