"""HSM clusters and custom key stores in SQL: the ``hsm_clusters`` and ``custom_key_stores``
tables, and the keys that name a store (``keys.custom_key_store_id``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from strongroom.domain.enums import (
    ConnectionErrorCode,
    ConnectionState,
    CustomKeyStoreType,
    XksProxyConnectivity,
)
from strongroom.domain.models import CustomKeyStore, HsmCluster, XksProxySettings
from strongroom.storage.schema import custom_key_stores, hsm_clusters, keys
from strongroom.storage.sql._rows import after_position, dt, enum, value


def _cluster(row: sa.Row[Any]) -> HsmCluster:
    created = dt(row.created)
    assert created is not None
    return HsmCluster(
        cluster_id=row.cluster_id,
        account=row.account_id,
        module_path=row.module_path,
        token_label=row.token_label,
        trust_anchor=row.trust_anchor,
        hsm_count=row.hsm_count,
        softhsm=bool(row.softhsm),
        created=created,
    )


def _store(row: sa.Row[Any]) -> CustomKeyStore:
    created = dt(row.creation_date)
    assert created is not None
    return CustomKeyStore(
        store_id=row.store_id,
        account=row.account_id,
        region=row.region,
        name=row.name,
        store_type=CustomKeyStoreType(row.store_type),
        cluster_id=row.cluster_id,
        trust_anchor=row.trust_anchor,
        connection_state=ConnectionState(row.connection_state),
        connection_error_code=enum(ConnectionErrorCode, row.connection_error_code),
        creation_date=created,
        xks=_xks(row),
    )


def _xks(row: sa.Row[Any]) -> XksProxySettings | None:
    if row.xks_uri_endpoint is None:
        return None
    return XksProxySettings(
        uri_endpoint=row.xks_uri_endpoint,
        uri_path=row.xks_uri_path,
        connectivity=XksProxyConnectivity(row.xks_connectivity),
        access_key_id=row.xks_access_key_id,
    )


def _xks_values(store: CustomKeyStore) -> dict[str, Any]:
    xks = store.xks
    return {
        "xks_uri_endpoint": None if xks is None else xks.uri_endpoint,
        "xks_uri_path": None if xks is None else xks.uri_path,
        "xks_connectivity": None if xks is None else xks.connectivity.value,
        "xks_access_key_id": None if xks is None else xks.access_key_id,
    }


# Every column but the wrapped password, which only ``wrapped_password`` reads.
_STORE_COLUMNS = [c for c in custom_key_stores.c if c.name != "wrapped_password"]


class SqlHsmClusters:
    """The HsmClusterRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def insert(self, cluster: HsmCluster) -> None:
        self._c.execute(
            hsm_clusters.insert().values(
                cluster_id=cluster.cluster_id,
                account_id=cluster.account,
                module_path=cluster.module_path,
                token_label=cluster.token_label,
                trust_anchor=cluster.trust_anchor,
                hsm_count=cluster.hsm_count,
                softhsm=cluster.softhsm,
                created=cluster.created.timestamp(),
            )
        )

    def get(self, cluster_id: str | None) -> HsmCluster | None:
        if cluster_id is None:
            return None
        q = sa.select(hsm_clusters).where(hsm_clusters.c.cluster_id == cluster_id)
        row = self._c.execute(q).first()
        return None if row is None else _cluster(row)

    def delete(self, cluster_id: str) -> bool:
        done = self._c.execute(hsm_clusters.delete().where(hsm_clusters.c.cluster_id == cluster_id))
        return bool(done.rowcount)

    def list(self, account: str | None) -> list[HsmCluster]:
        q = sa.select(hsm_clusters)
        if account is not None:
            q = q.where(hsm_clusters.c.account_id == account)
        return [_cluster(r) for r in self._c.execute(q.order_by(hsm_clusters.c.cluster_id))]


class SqlCustomKeyStores:
    """The CustomKeyStoreRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def insert(self, store: CustomKeyStore, wrapped_password: bytes) -> None:
        self._c.execute(
            custom_key_stores.insert().values(
                store_id=store.store_id,
                account_id=store.account,
                region=store.region,
                name=store.name,
                store_type=store.store_type.value,
                cluster_id=store.cluster_id,
                trust_anchor=store.trust_anchor,
                wrapped_password=wrapped_password,
                connection_state=store.connection_state.value,
                connection_error_code=value(store.connection_error_code),
                creation_date=store.creation_date.timestamp(),
                **_xks_values(store),
            )
        )

    def get(self, store_id: str, *, for_update: bool = False) -> CustomKeyStore | None:
        q = sa.select(*_STORE_COLUMNS).where(custom_key_stores.c.store_id == store_id)
        if for_update:
            q = q.with_for_update()
        row = self._c.execute(q).first()
        return None if row is None else _store(row)

    def get_by_name(self, account: str, region: str, name: str) -> CustomKeyStore | None:
        q = sa.select(*_STORE_COLUMNS).where(
            custom_key_stores.c.account_id == account,
            custom_key_stores.c.region == region,
            custom_key_stores.c.name == name,
        )
        row = self._c.execute(q).first()
        return None if row is None else _store(row)

    def update(self, store: CustomKeyStore) -> None:
        self._c.execute(
            custom_key_stores.update()
            .where(custom_key_stores.c.store_id == store.store_id)
            .values(
                name=store.name,
                cluster_id=store.cluster_id,
                trust_anchor=store.trust_anchor,
                connection_state=store.connection_state.value,
                connection_error_code=value(store.connection_error_code),
                **_xks_values(store),
            )
        )

    def wrapped_password(self, store_id: str) -> bytes | None:
        q = sa.select(custom_key_stores.c.wrapped_password).where(
            custom_key_stores.c.store_id == store_id
        )
        found = self._c.execute(q).scalar_one_or_none()
        return None if found is None else bytes(found)

    def set_wrapped_password(self, store_id: str, wrapped: bytes) -> None:
        self._c.execute(
            custom_key_stores.update()
            .where(custom_key_stores.c.store_id == store_id)
            .values(wrapped_password=wrapped)
        )

    def delete(self, store_id: str) -> None:
        self._c.execute(custom_key_stores.delete().where(custom_key_stores.c.store_id == store_id))

    def count(self, account: str, region: str) -> int:
        q = sa.select(sa.func.count()).where(
            custom_key_stores.c.account_id == account, custom_key_stores.c.region == region
        )
        return int(self._c.execute(q).scalar_one())

    def in_account(self, account: str) -> list[CustomKeyStore]:
        q = (
            sa.select(*_STORE_COLUMNS)
            .where(custom_key_stores.c.account_id == account)
            .order_by(custom_key_stores.c.store_id)
        )
        return [_store(r) for r in self._c.execute(q)]

    def using_cluster(self, cluster_id: str) -> list[CustomKeyStore]:
        q = (
            sa.select(*_STORE_COLUMNS)
            .where(custom_key_stores.c.cluster_id == cluster_id)
            .order_by(custom_key_stores.c.store_id)
        )
        return [_store(r) for r in self._c.execute(q)]

    def key_count(self, store_id: str) -> int:
        q = sa.select(sa.func.count()).where(keys.c.custom_key_store_id == store_id)
        return int(self._c.execute(q).scalar_one())

    def key_using(self, store_id: str, xks_key_id: str) -> str | None:
        q = sa.select(keys.c.arn).where(
            keys.c.custom_key_store_id == store_id, keys.c.xks_key_id == xks_key_id
        )
        found = self._c.execute(q).scalar_one_or_none()
        return None if found is None else str(found)

    def list(
        self, account: str, region: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[CustomKeyStore]:
        q = sa.select(*_STORE_COLUMNS).where(
            custom_key_stores.c.account_id == account, custom_key_stores.c.region == region
        )
        q = after_position(
            q, custom_key_stores.c.creation_date, custom_key_stores.c.store_id, after
        ).limit(limit)
        return [_store(r) for r in self._c.execute(q)]
