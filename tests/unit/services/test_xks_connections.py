"""The per-process XKS clients of connected external key stores, and the rule of
XksProxyUriEndpoint (services.xks_settings)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strongroom.domain.enums import ConnectionState, CustomKeyStoreType, XksProxyConnectivity
from strongroom.domain.errors import KMSInvalidStateException, ValidationException
from strongroom.domain.models import CustomKeyStore, XksProxySettings
from strongroom.keystores.base import KeyStores
from strongroom.keystores.filekey import FileRootKey
from strongroom.keystores.xks_client import XksClient, XksEndpoint
from strongroom.services.cache import KeyCache
from strongroom.services.core import Core
from strongroom.services.store_tokens import password_aad, store_change_name
from strongroom.services.xks_connections import XksClients, connected_client, xks_endpoint
from strongroom.services.xks_settings import check_endpoint
from strongroom.storage.sql import SqlStore

pytestmark = pytest.mark.unit

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="


class CountingClient(XksClient):
    """An XksClient that counts its closes (it never connects in these tests)."""

    closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def _client() -> CountingClient:
    return CountingClient(
        XksEndpoint("http://127.0.0.1:9", "/kms/xks/v1", "us-east-1", "A" * 20, SECRET)
    )


def test_a_change_of_the_store_drops_its_client_without_closing_it() -> None:
    clients = XksClients()
    a, b = _client(), _client()
    assert clients.put("cks-a", a, clients.generation) is a
    assert clients.put("cks-b", b, clients.generation) is b
    clients.invalidate("arn:aws:kms:us-east-1:111122223333:key/x")  # a key's change
    assert clients.get("cks-a") is a and a.closed == 0
    clients.invalidate(store_change_name("cks-a"))
    # Dropped, not closed: a request that took it a moment before finishes with it (an
    # end-to-end run saw "the client is closed" when the poll closed it under a request).
    assert clients.get("cks-a") is None and a.closed == 0
    assert clients.get("cks-b") is b
    clients.close()
    assert b.closed == 1


def test_a_client_made_before_an_invalidation_is_not_kept() -> None:
    clients = XksClients()
    generation = clients.generation
    clients.forget("cks-a")  # the store changed while its state was read
    late = _client()
    assert clients.put("cks-a", late, generation) is None
    assert clients.get("cks-a") is None and late.closed == 1


def test_the_second_of_two_racing_clients_is_closed() -> None:
    clients = XksClients()
    generation = clients.generation
    first, second = _client(), _client()
    assert clients.put("cks-a", first, generation) is first
    assert clients.put("cks-a", second, generation) is first
    assert second.closed == 1 and first.closed == 0


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    store = SqlStore(f"sqlite:///{tmp_path / 'strongroom.db'}")
    store.migrate()
    root_key = FileRootKey.create(tmp_path / "root.key")
    keystores = KeyStores(software=None, custom=None)  # type: ignore[arg-type]
    ca = tmp_path / "ca.pem"
    yield Core(
        store=store, root_key=root_key, cache=KeyCache(), keystores=keystores, xks_ca_bundle=ca
    )
    store.close()


def _store(core: Core, state: ConnectionState) -> CustomKeyStore:
    store = CustomKeyStore(
        store_id="cks-1234567890abcdef0",
        account="111122223333",
        region="eu-west-1",
        name="xks",
        store_type=CustomKeyStoreType.EXTERNAL_KEY_STORE,
        cluster_id=None,
        trust_anchor=None,
        connection_state=state,
        connection_error_code=None,
        creation_date=datetime.now(UTC),
        xks=XksProxySettings(
            "http://127.0.0.1:9", "/p/kms/xks/v1", XksProxyConnectivity.PUBLIC_ENDPOINT, "A" * 20
        ),
    )
    wrapped = core.root_key.wrap(SECRET.encode(), password_aad(store.store_id))
    with core.store.transaction() as tx:
        tx.custom_key_stores.insert(store, wrapped)
    return store


def test_connected_client_of_a_connected_store_is_kept(core: Core) -> None:
    store = _store(core, ConnectionState.CONNECTED)
    client = connected_client(core, store.store_id)
    assert connected_client(core, store.store_id) is client
    endpoint = client.endpoint
    assert endpoint == xks_endpoint(core, store)
    assert (endpoint.region, endpoint.secret_access_key) == ("eu-west-1", SECRET)
    assert endpoint.ca_bundle == str(core.xks_ca_bundle)
    assert SECRET not in repr(endpoint)


@pytest.mark.parametrize(
    "state", [ConnectionState.DISCONNECTED, ConnectionState.FAILED, ConnectionState.CONNECTING]
)
def test_connected_client_of_a_store_not_connected_is_refused(
    core: Core, state: ConnectionState
) -> None:
    store = _store(core, state)
    with pytest.raises(KMSInvalidStateException, match="not connected"):
        connected_client(core, store.store_id)
    with pytest.raises(KMSInvalidStateException):
        connected_client(core, "cks-0000000000000000a")  # gone


@pytest.mark.parametrize(
    "uri",
    [
        "https://xks.example.com",
        "https://xks.example.com:8443",
        "https://10.0.0.1:443",
        "http://127.0.0.1:8444",
        "http://127.8.9.10",
        "http://localhost:80",
        "http://[::1]:8444",
        "https://[::1]:8444",
    ],
)
def test_endpoints_accepted(uri: str) -> None:
    check_endpoint(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "http://xks.example.com",
        "http://10.0.0.1:8444",
        "http://128.0.0.1",
        "https://xks.example.com:0",
        "https://xks.example.com:65536",
        "https://xks.example.com/",
        "https://xks_example.com",
        "https://user@xks.example.com",
        "ftp://xks.example.com",
        "https://[::2]:8444",
    ],
)
def test_endpoints_refused(uri: str) -> None:
    with pytest.raises(ValidationException, match="xksProxyUriEndpoint"):
        check_endpoint(uri)
