"""Grant ids are 64 hex digits; every grant token is new and names its grant."""

from __future__ import annotations

import base64

import pytest

from strongroom.domain.ids import grant_token, is_grant_id, new_grant_id, token_grant_id

pytestmark = pytest.mark.unit


def test_grant_ids_are_64_hex_digits_and_fresh() -> None:
    ids = {new_grant_id() for _ in range(100)}
    assert len(ids) == 100 and all(is_grant_id(i) for i in ids)
    assert not is_grant_id("A" * 64) and not is_grant_id("a" * 63) and not is_grant_id("")


def test_every_token_is_new_and_names_its_grant() -> None:
    grant_id = new_grant_id()
    tokens = {grant_token(grant_id) for _ in range(50)}
    assert len(tokens) == 50
    assert {token_grant_id(t) for t in tokens} == {grant_id}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not base64!",
        "bm90IG91cnM=",  # base64, but not a token's length
        base64.b64encode(bytes([2]) + bytes(48)).decode(),  # another format version
        "é",
    ],
)
def test_anything_else_names_no_grant(token: str) -> None:
    assert token_grant_id(token) is None
