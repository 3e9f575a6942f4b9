"""The quota tables on a real SQLite database: the operator's values (an account's own over
the one for every account) and the shared token buckets that processes lease from."""

from __future__ import annotations

import pytest

from strongroom.storage.sql import SqlStore

pytestmark = pytest.mark.unit


def _take(store: SqlStore, want: int, now: float, rate: float = 10, capacity: float = 10) -> int:
    with store.transaction() as tx:
        return tx.quotas.take(
            "111122223333", "us-east-1", "q", rate=rate, capacity=capacity, want=want, now=now
        )


def test_a_new_bucket_starts_full_and_lends_no_more_than_it_holds(store: SqlStore) -> None:
    assert _take(store, 4, now=100.0) == 4
    assert _take(store, 10, now=100.0) == 6
    assert _take(store, 1, now=100.0) == 0


def test_a_bucket_refills_at_its_rate_up_to_its_capacity(store: SqlStore) -> None:
    assert _take(store, 10, now=100.0) == 10
    assert _take(store, 10, now=100.35) == 3  # 3.5 tokens: whole ones only
    assert _take(store, 10, now=100.40) == 1  # the half left, and 0.5 more
    assert _take(store, 100, now=1000.0) == 10  # never more than the capacity


def test_an_accounts_own_value_comes_before_the_one_for_every_account(store: SqlStore) -> None:
    with store.transaction() as tx:
        assert tx.quotas.value_for("111122223333", "CreateKey request rate") is None
        tx.quotas.put_value("*", "CreateKey request rate", 7, 1.0)
        tx.quotas.put_value("444455556666", "CreateKey request rate", 2, 1.0)
        tx.quotas.put_value("444455556666", "CreateKey request rate", 3, 2.0)  # replaces
    with store.transaction() as tx:
        assert tx.quotas.value_for("111122223333", "CreateKey request rate") == 7
        assert tx.quotas.value_for("444455556666", "CreateKey request rate") == 3
        assert sorted(tx.quotas.values()) == [
            ("*", "CreateKey request rate", 7.0),
            ("444455556666", "CreateKey request rate", 3.0),
        ]
        assert tx.quotas.delete_value("444455556666", "CreateKey request rate")
        assert not tx.quotas.delete_value("444455556666", "CreateKey request rate")
        assert tx.quotas.value_for("444455556666", "CreateKey request rate") == 7
