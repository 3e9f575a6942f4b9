"""The counts behind the resource quotas, on real SQLite and PostgreSQL databases: customer
managed keys per account and Region ("AWS KMS keys", ``key_counts``) and grants per key and
per grantee on a key (``grant_counts``). CreateKey's and CreateGrant's transactions read
them instead of counting rows, they stay exact as keys and grants come and go (rolled back,
deleted, AWS managed, other Regions, a backup restored), migration 0017 counts what there
is, and processes that create keys at once near the quota stop exactly at it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from strongroom.domain.enums import KeyManager, KeySpec, KeyState, KeyUsage
from strongroom.domain.errors import LimitExceededException
from strongroom.domain.models import Grant, Key
from strongroom.services.key_records import insert_key, new_key_record
from strongroom.storage import migrate, schema, snapshot
from strongroom.storage.sql import SqlStore
from strongroom.storage.sql.keys import _key_values

from .test_migration_0012 import _exec, _to, engine  # noqa: F401  (the fixture)

pytestmark = pytest.mark.unit

ACCOUNT, OTHER, REGION = "111122223333", "444455556666", "us-east-1"
QUOTA = "AWS KMS keys"


def _key(account: str = ACCOUNT, region: str = REGION, *, aws: bool = False) -> Key:
    key = new_key_record(
        account,
        region,
        str(uuid.uuid4()),
        key_spec=KeySpec.SYMMETRIC_DEFAULT,
        key_usage=KeyUsage.ENCRYPT_DECRYPT,
        description="",
        policy="{}",
        created=datetime.now(UTC),
    )
    return key.evolve(key_manager=KeyManager.AWS) if aws else key


def _counted(store: SqlStore, account: str = ACCOUNT, region: str = REGION) -> int:
    with store.read() as tx:
        return tx.quotas.customer_managed_keys(account, region)


def _keys_there_are(url: str) -> dict[tuple[str, str], int]:
    db = sa.create_engine(url)
    try:
        rows = _exec(
            db,
            "SELECT account_id, region, COUNT(*) FROM keys WHERE key_manager = 'CUSTOMER' "
            "GROUP BY account_id, region",
        )
    finally:
        db.dispose()
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}  # type: ignore[call-overload]


def _set_quota(store: SqlStore, value: int) -> None:
    with store.transaction() as tx:
        tx.quotas.put_value(ACCOUNT, QUOTA, value, time.time())


def test_create_key_reads_the_count_without_reading_the_keys(store: SqlStore) -> None:
    for _ in range(3):
        with store.transaction() as tx:
            insert_key(None, tx, _key(), None, ())  # type: ignore[arg-type]
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        with store.transaction() as tx:
            insert_key(None, tx, _key(), None, ())  # type: ignore[arg-type]
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)
    reads_keys = [s for s in statements if re.search(r"(?i)\bfrom\s+keys\b", s)]
    assert reads_keys == [], reads_keys
    assert not [s for s in statements if "count(" in s.lower()]
    assert _counted(store) == 4


def test_the_count_stays_exact_as_keys_come_and_go(store: SqlStore, shared_url: str) -> None:
    mine = [_key() for _ in range(5)]
    with store.transaction() as tx:
        for key in [*mine, _key(aws=True), _key(OTHER), _key(region="eu-west-1")]:
            tx.keys.insert(key)
    assert _counted(store) == 5
    assert _counted(store, OTHER) == 1
    assert _counted(store, region="eu-west-1") == 1
    assert _counted(store, region="ap-south-1") == 0

    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.keys.insert(_key())
        raise RuntimeError("rolled back")
    assert _counted(store) == 5

    with store.transaction() as tx:
        tx.keys.delete(mine[0])
        tx.keys.delete(mine[0])  # gone already: counts once
        tx.keys.delete(_key())  # never stored: does not count
    assert _counted(store) == 4
    assert {k: v for k, v in _keys_there_are(shared_url).items() if k[0] == ACCOUNT} == {
        (ACCOUNT, REGION): 4,
        (ACCOUNT, "eu-west-1"): 1,
    }


def test_the_quota_holds_at_its_value_and_a_refused_key_leaves_nothing(store: SqlStore) -> None:
    _set_quota(store, 2)
    for _ in range(2):
        with store.transaction() as tx:
            insert_key(None, tx, _key(), None, ())  # type: ignore[arg-type]
    refused = _key()
    with pytest.raises(LimitExceededException, match=QUOTA), store.transaction() as tx:
        insert_key(None, tx, refused, None, ())  # type: ignore[arg-type]
    with store.read() as tx:
        assert tx.keys.get(refused.arn) is None
    assert _counted(store) == 2
    with store.transaction() as tx:  # AWS managed keys do not count
        insert_key(None, tx, _key(aws=True), None, ())  # type: ignore[arg-type]


def _grant(key: Key, grantee: str) -> Grant:
    return Grant(
        grant_id=uuid.uuid4().hex * 2,
        key_arn=key.arn,
        grantee_principal=f"arn:aws:iam::{ACCOUNT}:role/{grantee}",
        operations=("Encrypt",),
        issuing_account=f"arn:aws:iam::{ACCOUNT}:root",
        creation_date=datetime.now(UTC),
    )


def _grant_counts(store: SqlStore, key: Key) -> tuple[int, int, int]:
    with store.read() as tx:
        return (
            tx.grants.count(key.arn),
            tx.grants.count(key.arn, f"arn:aws:iam::{ACCOUNT}:role/a"),
            tx.grants.count(key.arn, f"arn:aws:iam::{ACCOUNT}:role/b"),
        )


def test_grant_counts_stay_exact_and_are_read_without_reading_the_grants(
    store: SqlStore,
) -> None:
    key, other = _key(), _key()
    with store.transaction() as tx:
        tx.keys.insert(key)
        tx.keys.insert(other)
        mine = [_grant(key, "a"), _grant(key, "a"), _grant(key, "b")]
        for grant in [*mine, _grant(other, "a")]:
            tx.grants.insert(grant)
    assert _grant_counts(store, key) == (3, 2, 1)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.grants.insert(_grant(key, "b"))
        raise RuntimeError("rolled back")
    with store.transaction() as tx:
        assert tx.grants.delete(mine[0].grant_id)
        assert not tx.grants.delete(mine[0].grant_id)  # gone already: counts once
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        assert _grant_counts(store, key) == (2, 1, 1)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)
    assert not [s for s in statements if re.search(r"(?i)\bfrom\s+grants\b", s)]
    with store.transaction() as tx:  # deleting the key deletes its grants and their counts
        tx.keys.delete(key)
    assert _grant_counts(store, key) == (0, 0, 0)
    assert _grant_counts(store, other) == (1, 1, 0)


def _keys_by_state(url: str) -> dict[str, int]:
    db = sa.create_engine(url)
    try:
        rows = _exec(db, "SELECT state, COUNT(*) FROM keys GROUP BY state")
    finally:
        db.dispose()
    return {str(r[0]): int(r[1]) for r in rows}  # type: ignore[call-overload]


def _reported(store: SqlStore) -> dict[str, int]:
    """The keys by state the metrics report, and that no statement read the keys."""
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        states, _, _ = store.counts(datetime.now(UTC))
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)
    assert not [s for s in statements if re.search(r"(?i)\bfrom\s+keys\b", s)], statements
    return states


def test_the_metrics_keys_by_state_equal_a_count_of_the_keys(
    store: SqlStore, shared_url: str
) -> None:
    """As keys are created (customer and AWS managed, other accounts and Regions), change
    state (disabled, scheduled for deletion, the deletion cancelled), are updated in their
    state, rolled back and deleted, the kept counts the metrics read stay a count of the
    keys, states with no key left out."""
    assert _reported(store) == {} == _keys_by_state(shared_url)
    mine = [_key() for _ in range(4)]
    with store.transaction() as tx:
        for key in [*mine, _key(aws=True), _key(OTHER), _key(region="eu-west-1")]:
            tx.keys.insert(key)
    assert _reported(store) == {"Enabled": 7} == _keys_by_state(shared_url)
    with store.transaction() as tx:
        tx.keys.update(mine[0].evolve(state=KeyState.DISABLED))
        tx.keys.update(mine[1].evolve(state=KeyState.PENDING_DELETION))
        tx.keys.update(mine[2].evolve(state=KeyState.PENDING_DELETION))
        tx.keys.update(mine[3].evolve(description="same state"))
        tx.keys.update(_key().evolve(state=KeyState.DISABLED))  # never stored: no change
    expected = {"Enabled": 4, "Disabled": 1, "PendingDeletion": 2}
    assert _reported(store) == expected == _keys_by_state(shared_url)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.keys.update(mine[0].evolve(state=KeyState.ENABLED))
        tx.keys.insert(_key())
        raise RuntimeError("rolled back")
    assert _reported(store) == expected == _keys_by_state(shared_url)
    with store.transaction() as tx:
        tx.keys.update(mine[2].evolve(state=KeyState.DISABLED))  # CancelKeyDeletion
        tx.keys.delete(mine[1])  # the deletion job, in the state stored (PendingDeletion)
        tx.keys.delete(mine[1])  # gone already: counts once
        tx.keys.delete(mine[0].evolve(state=KeyState.ENABLED))  # stale record: stored state
    expected = {"Enabled": 4, "Disabled": 1}
    assert _reported(store) == expected == _keys_by_state(shared_url)


def test_keys_changing_state_both_ways_at_once_do_not_deadlock(
    store: SqlStore, shared_url: str
) -> None:
    """One transaction enables a key while another disables one: each moves a count out of
    one state's row and into the other's. Taking the two rows in opposite orders deadlocks
    on PostgreSQL (found by the kill -9 test: an EnableKey answered KMSInternalException);
    the rows are taken in one order, so both always finish."""
    keys = [_key(), _key()]
    with store.transaction() as tx:
        for key in keys:
            tx.keys.insert(key)
    keys[1] = keys[1].evolve(state=KeyState.DISABLED)
    with store.transaction() as tx:
        tx.keys.update(keys[1])
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def toggle(key: Key) -> None:
        start.wait()
        try:
            for _ in range(200):
                on = key.state is KeyState.DISABLED
                key = key.evolve(state=KeyState.ENABLED if on else KeyState.DISABLED)
                with store.transaction() as tx:
                    tx.keys.update(key)
        except BaseException as e:  # noqa: BLE001  (reported below, with the rest)
            errors.append(e)

    threads = [threading.Thread(target=toggle, args=(key,)) for key in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert _reported(store) == {"Enabled": 1, "Disabled": 1} == _keys_by_state(shared_url)


# A key row as the tables before migrations 0017 and 0018 held it.
_KEY_ROW = (
    "INSERT INTO keys (arn, key_id, account_id, region, state, description, key_usage, "
    "key_spec, origin, key_manager, multi_region, policy, creation_date, current_version) "
    "VALUES (:arn, 'k', :account, :region, :state, '', 'ENCRYPT_DECRYPT', "
    "'SYMMETRIC_DEFAULT', 'AWS_KMS', :manager, false, '{}', 1.0, 1)"
)


def _insert_keys(db: sa.Engine, rows: list[tuple[str, str, str, str]]) -> None:
    """Key rows ``arn:0``, ``arn:1``, ... of (account, Region, state, key manager)."""
    for i, (account, region, state, manager) in enumerate(rows):
        _exec(
            db,
            _KEY_ROW,
            arn=f"arn:{i}",
            account=account,
            region=region,
            state=state,
            manager=manager,
        )


def test_migration_0017_counts_the_keys_there_are(engine: sa.Engine) -> None:  # noqa: F811
    _to(engine, "0016")
    rows = [(ACCOUNT, REGION, "CUSTOMER")] * 3 + [
        (ACCOUNT, REGION, "AWS"),
        (ACCOUNT, "eu-west-1", "CUSTOMER"),
        (OTHER, REGION, "CUSTOMER"),
    ]
    _insert_keys(
        engine, [(account, region, "Enabled", manager) for account, region, manager in rows]
    )
    grant = (
        "INSERT INTO grants (grant_id, key_arn, grantee_principal, operations, "
        "issuing_account, creation_date) VALUES (:id, :key, :grantee, 'Encrypt', 'i', 1.0)"
    )
    for i, (key, grantee) in enumerate([("arn:0", "a"), ("arn:0", "a"), ("arn:0", "b")]):
        _exec(engine, grant, id=str(i), key=key, grantee=grantee)
    _exec(engine, grant, id="3", key="arn:1", grantee="b")
    _to(engine, "0017")
    grants = _exec(engine, "SELECT key_arn, grantee_principal, grants FROM grant_counts")
    assert {(r[0], r[1]): r[2] for r in grants} == {  # type: ignore[misc]
        ("arn:0", ""): 3,
        ("arn:0", "a"): 2,
        ("arn:0", "b"): 1,
        ("arn:1", ""): 1,
        ("arn:1", "b"): 1,
    }
    counts = _exec(engine, "SELECT account_id, region, customer_keys FROM key_counts")
    assert {(r[0], r[1]): r[2] for r in counts} == {  # type: ignore[misc]
        (ACCOUNT, REGION): 3,
        (ACCOUNT, "eu-west-1"): 1,
        (OTHER, REGION): 1,
    }
    assert "ix_keys_manager" not in {i["name"] for i in sa.inspect(engine).get_indexes("keys")}
    _to(engine, "0016", down=True)
    assert not {"key_counts", "grant_counts"} & set(sa.inspect(engine).get_table_names())
    assert "ix_keys_manager" in {i["name"] for i in sa.inspect(engine).get_indexes("keys")}


def test_migration_0018_counts_the_keys_by_state_there_are(engine: sa.Engine) -> None:  # noqa: F811
    _to(engine, "0017")
    rows = [(ACCOUNT, REGION, "Enabled")] * 2 + [
        (ACCOUNT, REGION, "Disabled"),
        (ACCOUNT, "eu-west-1", "Enabled"),
        (OTHER, REGION, "PendingDeletion"),
    ]
    _insert_keys(engine, [(account, region, state, "CUSTOMER") for account, region, state in rows])
    _to(engine, "0018")
    counts = _exec(engine, "SELECT account_id, region, state, key_count FROM key_state_counts")
    assert {(r[0], r[1], r[2]): r[3] for r in counts} == {  # type: ignore[misc]
        (ACCOUNT, REGION, "Enabled"): 2,
        (ACCOUNT, REGION, "Disabled"): 1,
        (ACCOUNT, "eu-west-1", "Enabled"): 1,
        (OTHER, REGION, "PendingDeletion"): 1,
    }
    _to(engine, "0017", down=True)
    assert "key_state_counts" not in set(sa.inspect(engine).get_table_names())


@pytest.mark.parametrize("revision", ["0016", "0018"])
def test_a_restored_backup_counts_its_keys(tmp_path: Path, revision: str) -> None:
    """A backup of a database at 0016 (no count: the migrations after the load count) or at
    0018 (the counts come with the rows), restored, then CreateKey near the quota."""
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    keys = [_key(), _key(), _key(OTHER), _key(aws=True)]
    if revision == "0016":
        db = sa.create_engine(source_url)
        migrate.upgrade(db, "0016")
        with db.begin() as conn:
            conn.execute(schema.keys.insert(), [_key_values(k) for k in keys])
        db.dispose()
    else:
        source = SqlStore(source_url)
        source.migrate()
        with source.transaction() as tx:
            for key in keys:
                tx.keys.insert(key)
        source.close()
    target = SqlStore(f"sqlite:///{tmp_path / 'target.db'}")
    try:
        with snapshot.consistent_read(source_url) as snap:
            assert snap.revision == revision
            tables = [(shape, snap.rows(shape.name)) for shape in snap.shapes()]
            snapshot.load(target.engine, revision, tables)
        assert _counted(target) == 2
        assert _counted(target, OTHER) == 1
        assert _reported(target) == {"Enabled": 4}
        _set_quota(target, 3)
        with target.transaction() as tx:
            insert_key(None, tx, _key(), None, ())  # type: ignore[arg-type]
        with pytest.raises(LimitExceededException), target.transaction() as tx:
            insert_key(None, tx, _key(), None, ())  # type: ignore[arg-type]
    finally:
        target.close()


_CREATOR = """
import os, sys, time, uuid
from datetime import UTC, datetime
from strongroom.domain.enums import KeySpec, KeyUsage
from strongroom.domain.errors import LimitExceededException
from strongroom.services.key_records import insert_key, new_key_record
from strongroom.storage.sql import SqlStore

store = SqlStore(sys.argv[1])
open(sys.argv[2] + f".{os.getpid()}", "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.002)
made = 0
while True:
    key = new_key_record(
        "111122223333", "us-east-1", str(uuid.uuid4()), key_spec=KeySpec.SYMMETRIC_DEFAULT,
        key_usage=KeyUsage.ENCRYPT_DECRYPT, description="", policy="{}",
        created=datetime.now(UTC),
    )
    try:
        with store.transaction() as tx:
            insert_key(None, tx, key, None, ())
    except LimitExceededException:
        break
    made += 1
print(made)
"""


def test_processes_creating_keys_at_once_stop_exactly_at_the_quota(
    store: SqlStore, shared_url: str, tmp_path: Path
) -> None:
    most, processes = 60, 3
    _set_quota(store, most)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    creators = [
        subprocess.Popen(
            [sys.executable, "-c", _CREATOR, shared_url, str(go)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(processes)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.*"))) < processes and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # every process is ready: they start together
    made = [int(p.communicate(timeout=120)[0]) for p in creators]
    assert all(p.returncode == 0 for p in creators)
    assert sum(made) == most
    assert _keys_there_are(shared_url)[(ACCOUNT, REGION)] == most
    assert _counted(store) == most
