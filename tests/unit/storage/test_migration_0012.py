"""Migration 0012 (external key stores) on a database that has AWS_CLOUDHSM stores, up and
down, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from strongroom.storage.migrate import alembic_config

_POSTGRES_ENV = "STRONGROOM_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty database of its own (never the session's, which other tests use)."""
    if request.param == "sqlite":
        eng = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield eng
        eng.dispose()
        return
    base = os.environ.get(_POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {_POSTGRES_ENV}")
    import psycopg

    name = f"strongroom_m12_{uuid.uuid4().hex[:10]}"
    conninfo = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    eng = sa.create_engine(f"{base.rpartition('/')[0]}/{name}")
    try:
        yield eng
    finally:
        eng.dispose()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _to(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as conn:
        step = command.downgrade if down else command.upgrade
        step(alembic_config(conn), revision)


_CLOUDHSM_STORE = (
    "INSERT INTO hsm_clusters VALUES ('cluster-1234567890a', '111122223333', '/m.so', 't', "
    "'PEM', 2, false, 1.0);"
    "INSERT INTO custom_key_stores (store_id, account_id, region, name, store_type, "
    "cluster_id, trust_anchor, wrapped_password, connection_state, creation_date) VALUES "
    "('cks-1234567890abcdef0', '111122223333', 'us-east-1', 'hsm', 'AWS_CLOUDHSM', "
    "'cluster-1234567890a', 'PEM', :pw, 'DISCONNECTED', 1.0)"
)


def _exec(engine: sa.Engine, sql: str, **params: object) -> list[sa.Row[object]]:
    with engine.begin() as conn:
        rows: list[sa.Row[object]] = []
        for statement in sql.split(";"):
            result = conn.execute(sa.text(statement), params)
            if result.returns_rows:
                rows += list(result)
        return rows


def test_migration_0012_keeps_cloudhsm_stores_and_admits_external_ones(
    engine: sa.Engine,
) -> None:
    _to(engine, "0011")
    _exec(engine, _CLOUDHSM_STORE, pw=b"wrapped")
    _to(engine, "0012")
    rows = _exec(
        engine,
        "SELECT cluster_id, trust_anchor, xks_uri_endpoint FROM custom_key_stores",
    )
    assert [tuple(r) for r in rows] == [("cluster-1234567890a", "PEM", None)]
    _exec(
        engine,
        "INSERT INTO custom_key_stores (store_id, account_id, region, name, store_type, "
        "wrapped_password, connection_state, creation_date, xks_uri_endpoint, "
        "xks_uri_path, xks_connectivity, xks_access_key_id) VALUES "
        "('cks-1234567890abcdef1', '111122223333', 'us-east-1', 'x', "
        "'EXTERNAL_KEY_STORE', :pw, 'DISCONNECTED', 2.0, 'https://xks.example.com', "
        "'/kms/xks/v1', 'PUBLIC_ENDPOINT', 'ABCDEFGHIJKLMNOPQRSTUVWX')",
        pw=b"wrapped",
    )
    key = (
        "INSERT INTO keys (arn, key_id, account_id, region, state, description, key_usage, "
        "key_spec, origin, key_manager, multi_region, policy, creation_date, "
        "current_version, custom_key_store_id, xks_key_id) VALUES (:arn, 'k', "
        "'111122223333', 'us-east-1', 'Enabled', '', 'ENCRYPT_DECRYPT', "
        "'SYMMETRIC_DEFAULT', 'EXTERNAL_KEY_STORE', 'CUSTOMER', false, '{}', 1.0, 1, "
        "'cks-1234567890abcdef1', 'foo')"
    )
    _exec(engine, key, arn="arn:1")
    with pytest.raises(sa.exc.IntegrityError):  # one KMS key per external key and store
        _exec(engine, key, arn="arn:2")
    _to(engine, "0011", down=True)
    rows = _exec(engine, "SELECT store_id FROM custom_key_stores")
    assert [tuple(r) for r in rows] == [("cks-1234567890abcdef0",)]
