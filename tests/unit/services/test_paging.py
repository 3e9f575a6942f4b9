"""Pagination markers: one opaque format, a marker of one listing refused by another, and
pages read one item past their end."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strongroom.domain.errors import InvalidMarkerException
from strongroom.domain.ids import is_key_id
from strongroom.services.paging import (
    decode_marker,
    decode_moment_marker,
    encode_marker,
    encode_moment_marker,
    next_page,
)

pytestmark = pytest.mark.unit

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_a_marker_names_its_position_again() -> None:
    marker = encode_marker("tag", "Cost Center")
    assert decode_marker(marker, "tag", str) == "Cost Center"  # the last field keeps spaces


def test_a_moment_marker_keeps_every_digit_of_the_creation_date() -> None:
    marker = encode_moment_marker("key", WHEN, KEY_ID)
    assert decode_moment_marker(marker, "key", is_key_id) == (WHEN, KEY_ID)


def test_a_marker_is_opaque_url_safe_text() -> None:
    marker = encode_marker("alias", "alias/ä?/+")
    assert KEY_ID not in marker and "alias" not in marker
    assert set(marker) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def test_a_marker_of_another_listing_is_refused() -> None:
    with pytest.raises(InvalidMarkerException):
        decode_marker(encode_marker("tag", "x"), "alias", str)


@pytest.mark.parametrize("marker", ["garbage", "zzz", "", "!!!!", "w6k="])
def test_text_that_is_no_marker_is_refused(marker: str) -> None:
    with pytest.raises(InvalidMarkerException, match="Invalid marker"):
        decode_marker(marker, "tag", str)


def test_a_position_that_cannot_be_is_refused() -> None:
    for marker in (
        encode_marker("key", "soon", KEY_ID),
        encode_marker("key", repr(WHEN.timestamp()), "not-a-key-id"),
        encode_marker("key", repr(WHEN.timestamp())),
    ):
        with pytest.raises(InvalidMarkerException):
            decode_moment_marker(marker, "key", is_key_id)
    with pytest.raises(InvalidMarkerException):
        decode_marker(encode_marker("rotation", "v1"), "rotation", int)  # int raises ValueError


def test_next_page_marks_the_last_item_only_when_more_follow() -> None:
    assert next_page([1, 2, 3], 2, str) == ([1, 2], "2")
    assert next_page([1, 2], 2, str) == ([1, 2], None)
    assert next_page([], 5, str) == ([], None)
