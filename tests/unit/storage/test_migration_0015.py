"""Migration 0015 (the listings' indexes, the change feed's) on a database of revision 0014
that holds keys, aliases and changes, up and down, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from conftest import POSTGRES_ENV, _drop_postgres_database, _fresh_postgres_database
from strongroom.storage.migrate import alembic_config

pytestmark = pytest.mark.unit

NEW = {
    "keys": {"ix_keys_listing", "ix_keys_manager"},
    "aliases": {"ix_aliases_target_name"},
    "custom_key_stores": {"ix_custom_key_stores_listing"},
    "changes": {"ix_changes_changed_at"},
}
OLD = {
    "keys": {"ix_keys_account_region"},
    "aliases": {"ix_aliases_target"},
    "custom_key_stores": {"ix_custom_key_stores_account_region"},
    "changes": set(),
}


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty database of its own."""
    if request.param == "sqlite":
        eng = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield eng
        eng.dispose()
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    url, name = _fresh_postgres_database(base)
    eng = sa.create_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()
        _drop_postgres_database(base, name)


def _to(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as conn:
        step = command.downgrade if down else command.upgrade
        step(alembic_config(conn), revision)


def _indexes(engine: sa.Engine) -> dict[str, set[str]]:
    inspector = sa.inspect(engine)
    return {t: {str(i["name"]) for i in inspector.get_indexes(t)} for t in NEW}


_KEY = (
    "INSERT INTO keys (arn, key_id, account_id, region, state, description, key_usage, "
    "key_spec, origin, key_manager, multi_region, policy, creation_date, current_version) "
    "VALUES (:arn, :id, '111122223333', 'us-east-1', 'Enabled', '', 'ENCRYPT_DECRYPT', "
    "'SYMMETRIC_DEFAULT', 'AWS_KMS', 'CUSTOMER', false, '{}', 1765000000.5, 1)"
)
_ALIAS = (
    "INSERT INTO aliases VALUES ('111122223333', 'us-east-1', :name, :id, 1765000000.5, "
    "1765000000.5)"
)
_CHANGE = "INSERT INTO changes (key_arn, changed_at) VALUES (:arn, :at)"


def _fill(engine: sa.Engine) -> list[str]:
    arns = []
    with engine.begin() as conn:
        for n in range(12):
            key_id = f"00000000-0000-4000-8000-{n:012d}"
            arn = f"arn:aws:kms:us-east-1:111122223333:key/{key_id}"
            conn.execute(sa.text(_KEY), {"arn": arn, "id": key_id})
            conn.execute(sa.text(_ALIAS), {"name": f"alias/k{n}", "id": key_id})
            conn.execute(sa.text(_CHANGE), {"arn": arn, "at": 1765000000.0 + n})
            arns.append(arn)
    return arns


def _listed(engine: sa.Engine) -> list[str]:
    q = "SELECT arn FROM keys ORDER BY creation_date, arn"
    with engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(sa.text(q))]


def test_migration_0015_indexes_the_listings_and_keeps_the_rows(engine: sa.Engine) -> None:
    _to(engine, "0014")
    arns = _fill(engine)
    assert all(not (_indexes(engine)[t] & NEW[t]) for t in NEW)
    _to(engine, "0015")
    indexes = _indexes(engine)
    for table in NEW:
        assert NEW[table] <= indexes[table], table
        assert not (OLD[table] & indexes[table]), table
    assert _listed(engine) == sorted(arns)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM aliases")).scalar_one() == 12
        assert conn.execute(sa.text("SELECT count(*) FROM changes")).scalar_one() == 12
    _to(engine, "0014", down=True)
    indexes = _indexes(engine)
    for table in NEW:
        assert OLD[table] <= indexes[table], table
        assert not (NEW[table] & indexes[table]), table
    assert _listed(engine) == sorted(arns)


def test_the_head_revision_is_alembics_and_a_current_schema_needs_no_alembic(
    engine: sa.Engine,
) -> None:
    from alembic.script import ScriptDirectory

    from strongroom.storage.migrate import current_revision, head_revision, upgrade

    assert ScriptDirectory.from_config(alembic_config(None)).get_heads() == [head_revision()]
    upgrade(engine)
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    # A start on a current schema (a fresh process) does not even import Alembic.
    url = engine.url.render_as_string(hide_password=False)
    check = (
        "import sys, sqlalchemy as sa; from strongroom.storage.migrate import upgrade; "
        f"upgrade(sa.create_engine({url!r})); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "False"), done.stderr
