"""The paged listings of the SQL store (keys, aliases, grants) on real SQLite and PostgreSQL
databases: many rows of one creation date page in order with no gap or duplicate, and the
query of a page after a position seeks in an index (the database's own query plan)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from strongroom.domain.enums import KeySpec, KeyUsage
from strongroom.domain.models import Alias, Grant, Key
from strongroom.services.key_records import new_key_record
from strongroom.storage.sql import SqlStore

pytestmark = pytest.mark.unit

ACCOUNT, REGION = "111122223333", "us-east-1"
SAME_DAY = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC)
RETIRING = f"arn:aws:iam::{ACCOUNT}:role/retirer"


def _key(n: int, created: datetime = SAME_DAY) -> Key:
    key_id = str(uuid.UUID(int=(n * 7919) % 1000 << 64 | n, version=4))
    return new_key_record(
        ACCOUNT,
        REGION,
        key_id,
        key_spec=KeySpec.SYMMETRIC_DEFAULT,
        key_usage=KeyUsage.ENCRYPT_DECRYPT,
        description="",
        policy="{}",
        created=created,
    )


def _grant(n: int, key_arn: str, created: datetime = SAME_DAY) -> Grant:
    return Grant(
        grant_id=f"{n:064x}"[::-1],  # not in creation order either
        key_arn=key_arn,
        grantee_principal=f"arn:aws:iam::{ACCOUNT}:role/g{n % 3}",
        operations=("Encrypt",),
        issuing_account=f"arn:aws:iam::{ACCOUNT}:root",
        creation_date=created,
        retiring_principal=RETIRING,
    )


def _fill(store: SqlStore, keys: list[Key], grants: list[Grant] = ()) -> None:  # type: ignore[assignment]
    with store.transaction() as tx:
        for key in keys:
            tx.keys.insert(key)
        for grant in grants:
            tx.grants.insert(grant)


def _walk_keys(store: SqlStore, limit: int) -> list[Key]:
    """Every key, a page of ``limit`` at a time, each page after the last one's end."""
    seen: list[Key] = []
    after = None
    while True:
        with store.transaction() as tx:
            page = tx.keys.list(ACCOUNT, REGION, after=after, limit=limit)
        seen += page
        if len(page) < limit:
            return seen
        after = (page[-1].creation_date, page[-1].arn)


def test_keys_of_one_creation_date_page_in_arn_order_without_gaps(store: SqlStore) -> None:
    keys = [_key(n) for n in range(57)]
    later = [_key(100 + n, SAME_DAY + timedelta(microseconds=1)) for n in range(5)]
    earlier = [_key(200 + n, SAME_DAY - timedelta(seconds=1)) for n in range(5)]
    _fill(store, keys + later + earlier)
    expected = [k.arn for k in sorted(earlier, key=lambda k: k.arn)]
    expected += sorted(k.arn for k in keys)
    expected += sorted(k.arn for k in later)
    for limit in (1, 7, 10, 67, 100):
        assert [k.arn for k in _walk_keys(store, limit)] == expected


def test_a_key_page_continues_after_its_position_when_that_key_is_gone(store: SqlStore) -> None:
    keys = sorted((_key(n) for n in range(20)), key=lambda k: k.arn)
    _fill(store, keys)
    with store.transaction() as tx:
        first = tx.keys.list(ACCOUNT, REGION, after=None, limit=8)
        tx.keys.delete(first[-1])  # the key the page ended on
        tx.keys.delete(keys[12])  # and one on a later page
        tx.keys.insert(_key(999, SAME_DAY + timedelta(days=1)))  # a new key, at the end
    with store.transaction() as tx:
        rest = tx.keys.list(
            ACCOUNT, REGION, after=(first[-1].creation_date, first[-1].arn), limit=100
        )
    wanted = [k.arn for k in keys[8:] if k.arn != keys[12].arn] + [_key(999).arn]
    assert [k.arn for k in rest] == wanted


def test_grants_of_one_creation_date_page_in_grant_id_order(store: SqlStore) -> None:
    key = _key(1)
    grants = [_grant(n, key.arn) for n in range(23)]
    _fill(store, [key], grants)
    expected = sorted(g.grant_id for g in grants)
    for retirable in (False, True):
        seen: list[str] = []
        after = None
        while True:
            with store.transaction() as tx:
                if retirable:
                    page = tx.grants.list_retirable(RETIRING, REGION, after=after, limit=5)
                else:
                    page = tx.grants.list(key.arn, after=after, limit=5)
            seen += [g.grant_id for g in page]
            if len(page) < 5:
                break
            after = (page[-1].creation_date, page[-1].grant_id)
        assert seen == expected


def test_aliases_of_a_key_page_in_name_order(store: SqlStore) -> None:
    key = _key(1)
    names = [f"alias/a{n:03d}" for n in range(30, 0, -1)]
    with store.transaction() as tx:
        for name in names:
            arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:{name}"
            tx.aliases.insert(Alias(arn, name, ACCOUNT, REGION, key.key_id, SAME_DAY, SAME_DAY))
    seen: list[str] = []
    after = None
    while True:
        with store.transaction() as tx:
            page = tx.aliases.list(ACCOUNT, REGION, key_id=key.key_id, after=after, limit=4)
        seen += [a.name for a in page]
        if len(page) < 4:
            break
        after = page[-1].name
    assert seen == sorted(names)


# -- the plan of a page deep in a listing -------------------------------------------------


class _Statements:
    """The SELECT statements (and their parameters) a block of store calls runs."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.seen: list[tuple[str, Any]] = []

    def __enter__(self) -> _Statements:
        sa.event.listen(self.engine, "before_cursor_execute", self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._note)

    def _note(self, conn: Any, cursor: Any, sql: str, params: Any, *rest: Any) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "DELETE")):
            self.seen.append((sql, params))


def _plans(store: SqlStore, statements: list[tuple[str, Any]]) -> list[str]:
    """The query plan of each statement, as one text."""
    plans = []
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if store.engine.dialect.name == "sqlite":
            for sql, params in statements:
                cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
                plans.append("\n".join(str(row[-1]) for row in cursor.fetchall()))
        else:
            # A few rows: PostgreSQL would rightly scan them; forbid that and ask whether an
            # index can answer the position (an "Index Cond" on the row), not filter it.
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("SET enable_bitmapscan = off")
            for sql, params in statements:
                cursor.execute("EXPLAIN " + sql, params)
                plans.append("\n".join(str(row[0]) for row in cursor.fetchall()))
        cursor.close()
    return plans


def _page_statements(store: SqlStore) -> dict[str, tuple[str, Any]]:
    key = _key(1)
    _fill(store, [key, *(_key(n) for n in range(2, 40))], [_grant(n, key.arn) for n in range(9)])
    position = (SAME_DAY, key.arn)
    grant_position = (SAME_DAY, "0" * 64)
    found: dict[str, tuple[str, Any]] = {}
    calls = {
        "keys": lambda tx: tx.keys.list(ACCOUNT, REGION, after=position, limit=5),
        "grants": lambda tx: tx.grants.list(key.arn, after=grant_position, limit=5),
        "retirable": lambda tx: tx.grants.list_retirable(
            RETIRING, REGION, after=grant_position, limit=5
        ),
        "aliases": lambda tx: tx.aliases.list(ACCOUNT, REGION, key_id=None, after="a", limit=5),
        "key aliases": lambda tx: tx.aliases.list(
            ACCOUNT, REGION, key_id=key.key_id, after="a", limit=5
        ),
    }
    for name, call in calls.items():
        with _Statements(store.engine) as statements, store.transaction() as tx:
            call(tx)
        (found[name],) = statements.seen
    return found


def test_a_page_after_a_position_seeks_in_an_index_and_sorts_nothing(store: SqlStore) -> None:
    statements = _page_statements(store)
    plans = dict(zip(statements, _plans(store, list(statements.values())), strict=True))
    if store.engine.dialect.name == "sqlite":
        assert (
            "USING INDEX ix_keys_listing (account_id=? AND region=? AND (creation_date,arn)>(?,?))"
            in plans["keys"]
        )
        assert (
            "USING INDEX ix_grants_key (key_arn=? AND (creation_date,grant_id)>(?,?))"
            in plans["grants"]
        )
        assert (
            "ix_grants_retiring (retiring_principal=? AND (creation_date,grant_id)>(?,?))"
            in plans["retirable"]
        )
        assert "(account_id=? AND region=? AND name>?)" in plans["aliases"]
        assert (
            "ix_aliases_target_name (account_id=? AND region=? AND target_key_id=? AND name>?)"
            in plans["key aliases"]
        )
        for name, plan in plans.items():
            assert "TEMP B-TREE" not in plan, (name, plan)
            assert "SCAN" not in plan.replace("SCAN CONSTANT ROW", ""), (name, plan)
    else:
        assert (
            "Index Cond:" in plans["keys"] and "ROW(creation_date, (arn)::text) >" in plans["keys"]
        )
        assert "ix_keys_listing" in plans["keys"]
        assert "ix_grants_key" in plans["grants"] and "ROW(creation_date" in plans["grants"]
        assert "ix_grants_retiring" in plans["retirable"]
        for name, plan in plans.items():
            assert "Sort" not in plan, (name, plan)


def test_the_prune_of_the_change_feed_finds_old_changes_by_index(store: SqlStore) -> None:
    with store.transaction() as tx:
        for n in range(20):
            tx.changes.record(f"arn:{n}", SAME_DAY + timedelta(minutes=n))
    with _Statements(store.engine) as statements, store.transaction() as tx:
        tx.changes.prune(SAME_DAY + timedelta(minutes=5))
    (plan,) = _plans(store, statements.seen)
    assert "ix_changes_changed_at" in plan, plan
    assert store.changes_since(0)[1] == {f"arn:{n}" for n in range(5, 20)}
