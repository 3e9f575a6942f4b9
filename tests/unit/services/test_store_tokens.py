"""The per-process tokens of connected custom key stores: the change feed drops them."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.domain.ids import (
    CLUSTER_ID_RE,
    is_custom_key_store_id,
    new_cluster_id,
    new_custom_key_store_id,
)
from strongroom.keystores.pkcs11_token import Token
from strongroom.services.store_tokens import StoreTokens, store_change_name

pytestmark = pytest.mark.unit


def _token() -> Token:
    return Token(Path("/nonexistent.so"), "label", "pin")  # never opened


def test_change_of_the_store_drops_its_token_and_others_stay() -> None:
    tokens = StoreTokens()
    a, b = _token(), _token()
    tokens.put("cks-a", a, tokens.generation)
    tokens.put("cks-b", b, tokens.generation)
    tokens.invalidate("arn:aws:kms:us-east-1:111122223333:key/x")  # a key's change: no effect
    assert tokens.get("cks-a") is a
    tokens.invalidate(store_change_name("cks-a"))
    assert tokens.get("cks-a") is None and tokens.get("cks-b") is b


def test_token_opened_before_an_invalidation_is_not_kept() -> None:
    tokens = StoreTokens()
    generation = tokens.generation
    tokens.forget("cks-a")  # the store changed while its state was being read
    tokens.put("cks-a", _token(), generation)
    assert tokens.get("cks-a") is None


def test_ids_have_aws_forms() -> None:
    assert is_custom_key_store_id(new_custom_key_store_id())
    assert not is_custom_key_store_id("cks-123")
    assert CLUSTER_ID_RE.fullmatch(new_cluster_id())
    assert not CLUSTER_ID_RE.fullmatch("cluster-1")
