"""Custom key stores of type EXTERNAL_KEY_STORE against a real server and a real bundled
proxy (``strongroom xks-proxy --dev`` on SoftHSM2), driven with boto3 and once with the AWS
CLI: create, describe, connect, disconnect, update, delete, every validation error, the
proxy checks of Create/Update/Connect and their errors, credential rotation while
connected, and the secret access key kept out of responses and the audit log."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    POSTGRES_ENV,
    Server,
    _drop_postgres_database,
    _fresh_postgres_database,
    aws_cli,
    free_port,
    start_server,
    stop_server,
)
from strongroom.crypto.trust_anchor import self_signed_trust_anchor
from strongroom.keystores import softhsm

from ._support import (
    assert_kms_error,
    describe_store,
    eventually,
    make_client,
    store_state_is,
    stored_files,
)
from ._xks import Proxy, running_proxy

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(
        not any(p.is_file() for p in softhsm.MODULE_PATHS), reason="SoftHSM2 is not installed"
    ),
]

WRONG_SECRET = "V3JvbmdTZWNyZXRXcm9uZ1NlY3JldFdyb25nU2VjcmV0V3Jvbmc="  # 52 characters


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """One dev proxy for the whole module (both backends)."""
    yield from running_proxy(tmp_path_factory, "xks")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    url = name = None
    if request.param == "postgres":
        base = os.environ.get(POSTGRES_ENV)
        if not base:
            pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
        url, name = _fresh_postgres_database(base)
    server = start_server(tmp_path_factory.mktemp("xks-stores") / "data", url)
    yield server
    stop_server(server)
    if name is not None:
        _drop_postgres_database(os.environ[POSTGRES_ENV], name)


@pytest.fixture(scope="module")
def kms(srv: Server) -> Any:
    return srv.client()


@pytest.fixture(scope="module")
def raw_kms(srv: Server) -> Any:
    """A client that leaves every parameter check to the server."""
    return make_client(srv.endpoint, srv.access_key_id, srv.secret_access_key, validate=False)


@pytest.fixture(autouse=True)
def no_stores_left(kms: Any, proxy: Proxy) -> Iterator[None]:
    """Each test starts with the proxy up and leaves no custom key store behind (the quota,
    and one store per proxy URI)."""
    if proxy.process is None:
        proxy.start()
    yield
    for store in kms.describe_custom_key_stores()["CustomKeyStores"]:
        if store["ConnectionState"] != "DISCONNECTED":
            kms.disconnect_custom_key_store(CustomKeyStoreId=store["CustomKeyStoreId"])
        kms.delete_custom_key_store(CustomKeyStoreId=store["CustomKeyStoreId"])


def _endpoint(proxy: Proxy, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{proxy.port}"


def _path(proxy: Proxy) -> str:
    return f"{proxy.config['uri_prefix']}/kms/xks/v1"


def _credential(proxy: Proxy, which: int = 0) -> dict[str, str]:
    chosen = proxy.config["credentials"][which]
    return {
        "AccessKeyId": chosen["access_key_id"],
        "RawSecretAccessKey": chosen["secret_access_key"],
    }


def _params(proxy: Proxy, **changes: Any) -> dict[str, Any]:
    """CreateCustomKeyStore parameters of a store on the dev proxy; a change to None drops
    the member."""
    params: dict[str, Any] = {
        "CustomKeyStoreName": f"xks-{uuid.uuid4().hex[:8]}",
        "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyUriEndpoint": _endpoint(proxy),
        "XksProxyUriPath": _path(proxy),
        "XksProxyAuthenticationCredential": _credential(proxy),
        "XksProxyConnectivity": "PUBLIC_ENDPOINT",
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


def _create(kms: Any, proxy: Proxy, **changes: Any) -> str:
    return kms.create_custom_key_store(**_params(proxy, **changes))["CustomKeyStoreId"]  # type: ignore[no-any-return]


def _secrets(proxy: Proxy) -> list[str]:
    return [c["secret_access_key"] for c in proxy.config["credentials"]] + [WRONG_SECRET]


def _restart_proxy(proxy: Proxy, credentials: list[dict[str, str]] | None = None) -> None:
    """Restart the proxy, accepting only ``credentials`` (None: both dev credential sets)."""
    proxy.stop()
    config_path = proxy.data_dir / "xks-proxy.json"
    config = json.loads(config_path.read_text())
    config.setdefault("all_credentials", config["credentials"])
    config["credentials"] = credentials or config["all_credentials"]
    config_path.write_text(json.dumps(config))
    proxy.start()
    proxy.config["credentials"] = config["all_credentials"]


# -- the lifecycle ------------------------------------------------------------------------


def test_create_describe_connect_disconnect_delete(kms: Any, proxy: Proxy) -> None:
    params = _params(proxy)
    created = kms.create_custom_key_store(**params)
    store_id = created["CustomKeyStoreId"]
    assert store_id.startswith("cks-") and len(store_id) == 21
    entry = describe_store(kms, store_id)
    assert entry["CustomKeyStoreName"] == params["CustomKeyStoreName"]
    assert entry["CustomKeyStoreType"] == "EXTERNAL_KEY_STORE"
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert entry["XksProxyConfiguration"] == {
        "Connectivity": "PUBLIC_ENDPOINT",
        "AccessKeyId": params["XksProxyAuthenticationCredential"]["AccessKeyId"],
        "UriEndpoint": _endpoint(proxy),
        "UriPath": _path(proxy),
    }
    for absent in ("CloudHsmClusterId", "TrustAnchorCertificate", "ConnectionErrorCode"):
        assert absent not in entry
    assert isinstance(entry["CreationDate"], datetime)
    listed = kms.describe_custom_key_stores()["CustomKeyStores"]
    assert [s["CustomKeyStoreId"] for s in listed] == [store_id]
    assert not any(secret in repr(listed) for secret in _secrets(proxy))

    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    store_state_is(kms, store_id, "CONNECTED")
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)  # connected already: fine
    assert_kms_error(
        "CustomKeyStoreInvalidStateException",
        kms.delete_custom_key_store,
        CustomKeyStoreId=store_id,
    )
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    store_state_is(kms, store_id, "DISCONNECTED")
    assert_kms_error(
        "CustomKeyStoreInvalidStateException",
        kms.disconnect_custom_key_store,
        CustomKeyStoreId=store_id,
    )
    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert_kms_error(
        "CustomKeyStoreNotFoundException",
        kms.describe_custom_key_stores,
        CustomKeyStoreId=store_id,
    )


def test_create_with_the_aws_cli(
    srv: Server, proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AWS CLI v1 reads a parameter value that is an http(s):// URL from that URL unless
    # told not to: the proxy's endpoint is such a value.
    config = tmp_path / "aws-config"
    config.write_text("[default]\ncli_follow_urlparam = false\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    credential = _credential(proxy)
    done = aws_cli(
        srv,
        "create-custom-key-store",
        "--custom-key-store-name",
        "xks-cli",
        "--custom-key-store-type",
        "EXTERNAL_KEY_STORE",
        "--xks-proxy-uri-endpoint",
        _endpoint(proxy),
        "--xks-proxy-uri-path",
        _path(proxy),
        "--xks-proxy-authentication-credential",
        json.dumps(credential),
        "--xks-proxy-connectivity",
        "PUBLIC_ENDPOINT",
    )
    store_id = json.loads(done.stdout)["CustomKeyStoreId"]
    described = aws_cli(srv, "describe-custom-key-stores", "--custom-key-store-name", "xks-cli")
    (entry,) = json.loads(described.stdout)["CustomKeyStores"]
    assert entry["CustomKeyStoreId"] == store_id
    assert entry["XksProxyConfiguration"]["AccessKeyId"] == credential["AccessKeyId"]
    assert credential["RawSecretAccessKey"] not in described.stdout


# -- validation ---------------------------------------------------------------------------

_KEY_ID = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VPCE_SERVICE = "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0"
_SECRET = "A" * 43


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"XksProxyUriEndpoint": None}, "XksProxyUriEndpoint is required"),
        ({"XksProxyUriPath": None}, "XksProxyUriPath is required"),
        (
            {"XksProxyAuthenticationCredential": None},
            "XksProxyAuthenticationCredential is required",
        ),
        ({"XksProxyConnectivity": None}, "XksProxyConnectivity is required"),
        (
            {"XksProxyAuthenticationCredential": {"AccessKeyId": _KEY_ID}},
            "Value null at 'xksProxyAuthenticationCredential.rawSecretAccessKey' failed to "
            "satisfy constraint: Member must not be null",
        ),
        (
            {
                "XksProxyAuthenticationCredential": {
                    "AccessKeyId": "A" * 19,
                    "RawSecretAccessKey": _SECRET,
                }
            },
            "xksProxyAuthenticationCredential.accessKeyId' failed to satisfy constraint: Member "
            "must have length greater than or equal to 20",
        ),
        (
            {
                "XksProxyAuthenticationCredential": {
                    "AccessKeyId": "A" * 31,
                    "RawSecretAccessKey": _SECRET,
                }
            },
            "Member must have length less than or equal to 30",
        ),
        (
            {
                "XksProxyAuthenticationCredential": {
                    "AccessKeyId": "abcdefghijklmnopqrstu",
                    "RawSecretAccessKey": _SECRET,
                }
            },
            "accessKeyId' failed to satisfy constraint: Member must satisfy regular expression "
            "pattern: ^[A-Z2-7]+$",
        ),
        (
            {
                "XksProxyAuthenticationCredential": {
                    "AccessKeyId": _KEY_ID,
                    "RawSecretAccessKey": "A" * 42,
                }
            },
            "rawSecretAccessKey' failed to satisfy constraint: Member must have length greater "
            "than or equal to 43",
        ),
        (
            {
                "XksProxyAuthenticationCredential": {
                    "AccessKeyId": _KEY_ID,
                    "RawSecretAccessKey": "A" * 65,
                }
            },
            "Member must have length less than or equal to 64",
        ),
        (
            {
                "XksProxyAuthenticationCredential": {
                    "AccessKeyId": _KEY_ID,
                    "RawSecretAccessKey": "!" * 43,
                }
            },
            "rawSecretAccessKey' failed to satisfy constraint: Member must satisfy regular "
            "expression pattern",
        ),
        ({"XksProxyUriEndpoint": "ftp://xks.example.com"}, "xksProxyUriEndpoint"),
        ({"XksProxyUriEndpoint": "http://xks.example.com"}, "http:// only for a loopback host"),
        ({"XksProxyUriEndpoint": "http://10.0.0.1:8080"}, "xksProxyUriEndpoint"),
        ({"XksProxyUriEndpoint": "https://xks_example.com"}, "^https://[a-zA-Z0-9.-]+$"),
        ({"XksProxyUriEndpoint": "https://xks.example.com:70000"}, "1 to 65535"),
        ({"XksProxyUriEndpoint": "https://xks.example.com/path"}, "xksProxyUriEndpoint"),
        ({"XksProxyUriEndpoint": "https://a"}, "length greater than or equal to 10"),
        ({"XksProxyUriPath": "/kms/xks/v1/"}, "xksProxyUriPath' failed to satisfy constraint"),
        ({"XksProxyUriPath": "/prefix/kms/xks"}, "xksProxyUriPath' failed to satisfy constraint"),
        (
            {"CloudHsmClusterId": "cluster-abcdefghijk"},
            "CloudHsmClusterId is not valid for a custom key store of type EXTERNAL_KEY_STORE",
        ),
        ({"KeyStorePassword": "kmsuser-password"}, "KeyStorePassword is not valid"),
        ({"TrustAnchorCertificate": "PEM"}, "TrustAnchorCertificate is not valid"),
    ],
)
def test_create_refuses_invalid_members(
    raw_kms: Any, proxy: Proxy, changes: dict[str, Any], needle: str
) -> None:
    error = assert_kms_error(
        "ValidationException", raw_kms.create_custom_key_store, **_params(proxy, **changes)
    )["Error"]
    assert needle in error["Message"], error
    assert _SECRET not in error["Message"] and "!" * 43 not in error["Message"]
    assert raw_kms.describe_custom_key_stores()["CustomKeyStores"] == []


def _cloudhsm_store_params(srv: Server, tmp_path: Path) -> dict[str, str]:
    """CreateCustomKeyStore parameters of an AWS_CLOUDHSM store on a newly registered
    cluster (no token behind it: the store is never connected here)."""
    pem = self_signed_trust_anchor("xks test anchor", datetime.now(UTC))
    cluster_id = "cluster-" + uuid.uuid4().hex[:12].translate(str.maketrans("0189", "abcd"))
    anchor = tmp_path / f"{cluster_id}.pem"
    anchor.write_text(pem)
    srv.admin(
        "hsm-cluster", "add", cluster_id, "--module", str(softhsm.module_path()),
        "--token-label", "no-such-token", "--trust-anchor", str(anchor), "--hsm-count", "2",
    )  # fmt: skip
    return {
        "CustomKeyStoreName": f"hsm-{uuid.uuid4().hex[:8]}",
        "CloudHsmClusterId": cluster_id,
        "TrustAnchorCertificate": pem,
        "KeyStorePassword": "kmsuser-password",
    }


def test_xks_members_are_refused_for_a_cloudhsm_store(
    srv: Server, raw_kms: Any, proxy: Proxy, tmp_path: Path
) -> None:
    hsm = _cloudhsm_store_params(srv, tmp_path)
    error = assert_kms_error(
        "ValidationException",
        raw_kms.create_custom_key_store,
        XksProxyUriPath=_path(proxy),
        **hsm,
    )["Error"]
    assert (
        "XksProxyUriPath is not valid for a custom key store of type AWS_CLOUDHSM"
        in error["Message"]
    )
    store_id = raw_kms.create_custom_key_store(**hsm)["CustomKeyStoreId"]
    error = assert_kms_error(
        "ValidationException",
        raw_kms.update_custom_key_store,
        CustomKeyStoreId=store_id,
        XksProxyAuthenticationCredential=_credential(proxy),
    )["Error"]
    assert "XksProxyAuthenticationCredential is not valid" in error["Message"]


@pytest.mark.parametrize(
    "changes",
    [
        {"XksProxyConnectivity": "VPC_ENDPOINT_SERVICE"},
        {
            "XksProxyConnectivity": "VPC_ENDPOINT_SERVICE",
            "XksProxyVpcEndpointServiceName": _VPCE_SERVICE,
        },
        {"XksProxyVpcEndpointServiceName": _VPCE_SERVICE},
    ],
)
def test_vpc_endpoint_service_is_unsupported(
    raw_kms: Any, proxy: Proxy, changes: dict[str, Any]
) -> None:
    error = assert_kms_error(
        "UnsupportedOperationException",
        raw_kms.create_custom_key_store,
        **_params(proxy, **changes),
    )["Error"]
    assert "VPC_ENDPOINT_SERVICE" in error["Message"] and "PUBLIC_ENDPOINT" in error["Message"]


def test_quota_counts_stores_of_both_types(srv: Server, proxy: Proxy, tmp_path: Path) -> None:
    kms = srv.client(region="ap-south-1")
    made = [
        kms.create_custom_key_store(**_cloudhsm_store_params(srv, tmp_path))["CustomKeyStoreId"]
        for _ in range(10)
    ]
    try:
        assert_kms_error("LimitExceededException", kms.create_custom_key_store, **_params(proxy))
    finally:
        for store_id in made:
            kms.delete_custom_key_store(CustomKeyStoreId=store_id)


# -- the proxy check of CreateCustomKeyStore ----------------------------------------------


def test_create_with_the_proxy_unreachable(kms: Any, proxy: Proxy) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    assert_kms_error(
        "XksProxyUriUnreachableException",
        kms.create_custom_key_store,
        **_params(proxy, XksProxyUriEndpoint=closed),
    )
    # https with a port passes the endpoint's rule; nothing listens there either.
    assert_kms_error(
        "XksProxyUriUnreachableException",
        kms.create_custom_key_store,
        **_params(proxy, XksProxyUriEndpoint=f"https://127.0.0.1:{free_port()}"),
    )
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []


def test_create_with_a_wrong_credential(kms: Any, proxy: Proxy) -> None:
    good = _credential(proxy)
    for credential in (
        {**good, "RawSecretAccessKey": WRONG_SECRET},
        {**good, "AccessKeyId": "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    ):
        error = assert_kms_error(
            "XksProxyIncorrectAuthenticationCredentialException",
            kms.create_custom_key_store,
            **_params(proxy, XksProxyAuthenticationCredential=credential),
        )["Error"]
        assert WRONG_SECRET not in error["Message"]
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []


def test_create_with_a_wrong_path(kms: Any, proxy: Proxy) -> None:
    assert_kms_error(
        "XksProxyInvalidConfigurationException",
        kms.create_custom_key_store,
        **_params(proxy, XksProxyUriPath="/elsewhere/kms/xks/v1"),
    )


def test_proxy_uri_in_use(kms: Any, proxy: Proxy) -> None:
    first = _create(kms, proxy)
    error = assert_kms_error(
        "XksProxyUriInUseException", kms.create_custom_key_store, **_params(proxy)
    )["Error"]
    assert first in error["Message"]
    # The same proxy under another endpoint is another URI.
    second = _create(kms, proxy, XksProxyUriEndpoint=_endpoint(proxy, "localhost"))
    assert_kms_error(
        "XksProxyUriInUseException",
        kms.update_custom_key_store,
        CustomKeyStoreId=second,
        XksProxyUriEndpoint=_endpoint(proxy),
    )
    kms.delete_custom_key_store(CustomKeyStoreId=first)
    kms.update_custom_key_store(CustomKeyStoreId=second, XksProxyUriEndpoint=_endpoint(proxy))
    assert describe_store(kms, second)["XksProxyConfiguration"]["UriEndpoint"] == _endpoint(proxy)


def test_name_in_use(kms: Any, proxy: Proxy) -> None:
    store_id = _create(kms, proxy)
    name = describe_store(kms, store_id)["CustomKeyStoreName"]
    assert_kms_error(
        "CustomKeyStoreNameInUseException",
        kms.create_custom_key_store,
        **_params(
            proxy, CustomKeyStoreName=name, XksProxyUriEndpoint=_endpoint(proxy, "localhost")
        ),
    )


# -- UpdateCustomKeyStore -----------------------------------------------------------------


def test_update_while_connected(kms: Any, proxy: Proxy) -> None:
    store_id = _create(kms, proxy)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    store_state_is(kms, store_id, "CONNECTED")
    for member, value in (
        ("XksProxyUriEndpoint", _endpoint(proxy, "localhost")),
        ("XksProxyUriPath", "/other/kms/xks/v1"),
        ("XksProxyConnectivity", "PUBLIC_ENDPOINT"),
    ):
        error = assert_kms_error(
            "CustomKeyStoreInvalidStateException",
            kms.update_custom_key_store,
            CustomKeyStoreId=store_id,
            **{member: value},
        )["Error"]
        assert member in error["Message"] and "DISCONNECTED" in error["Message"]
    kms.update_custom_key_store(CustomKeyStoreId=store_id, NewCustomKeyStoreName="renamed-xks")
    # Rotation: the proxy accepts its second credential set too.
    second = _credential(proxy, 1)
    kms.update_custom_key_store(CustomKeyStoreId=store_id, XksProxyAuthenticationCredential=second)
    entry = store_state_is(kms, store_id, "CONNECTED")
    assert entry["CustomKeyStoreName"] == "renamed-xks"
    assert entry["XksProxyConfiguration"]["AccessKeyId"] == second["AccessKeyId"]
    # A credential the proxy refuses changes nothing.
    assert_kms_error(
        "XksProxyIncorrectAuthenticationCredentialException",
        kms.update_custom_key_store,
        CustomKeyStoreId=store_id,
        XksProxyAuthenticationCredential={**second, "RawSecretAccessKey": WRONG_SECRET},
        NewCustomKeyStoreName="not-taken",
    )
    entry = describe_store(kms, store_id)
    assert entry["CustomKeyStoreName"] == "renamed-xks"
    assert entry["XksProxyConfiguration"]["AccessKeyId"] == second["AccessKeyId"]
    assert_kms_error(
        "ValidationException",
        kms.update_custom_key_store,
        CustomKeyStoreId=store_id,
        KeyStorePassword="kmsuser-password",
    )


def test_update_while_disconnected_checks_the_new_settings(
    kms: Any, raw_kms: Any, proxy: Proxy
) -> None:
    store_id = _create(kms, proxy)
    before = describe_store(kms, store_id)
    for code, changes in (
        ("XksProxyInvalidConfigurationException", {"XksProxyUriPath": "/elsewhere/kms/xks/v1"}),
        (
            "XksProxyUriUnreachableException",
            {"XksProxyUriEndpoint": f"http://127.0.0.1:{free_port()}"},
        ),
        (
            "XksProxyIncorrectAuthenticationCredentialException",
            {
                "XksProxyAuthenticationCredential": {
                    **_credential(proxy),
                    "RawSecretAccessKey": WRONG_SECRET,
                }
            },
        ),
    ):
        assert_kms_error(code, kms.update_custom_key_store, CustomKeyStoreId=store_id, **changes)
        assert describe_store(kms, store_id) == before
    assert_kms_error(
        "ValidationException",
        raw_kms.update_custom_key_store,
        CustomKeyStoreId=store_id,
        XksProxyUriEndpoint="http://xks.example.com",
    )
    assert_kms_error(
        "UnsupportedOperationException",
        raw_kms.update_custom_key_store,
        CustomKeyStoreId=store_id,
        XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
    )
    kms.update_custom_key_store(
        CustomKeyStoreId=store_id,
        XksProxyUriEndpoint=_endpoint(proxy, "localhost"),
        XksProxyAuthenticationCredential=_credential(proxy, 1),
    )
    config = describe_store(kms, store_id)["XksProxyConfiguration"]
    assert config["UriEndpoint"] == _endpoint(proxy, "localhost")
    assert config["AccessKeyId"] == _credential(proxy, 1)["AccessKeyId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    store_state_is(kms, store_id, "CONNECTED")


# -- ConnectCustomKeyStore failing --------------------------------------------------------


def test_connect_fails_when_the_proxy_is_down_or_refuses_the_credential(
    kms: Any, proxy: Proxy
) -> None:
    store_id = _create(kms, proxy, XksProxyAuthenticationCredential=_credential(proxy, 1))
    proxy.stop()
    try:
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)
        entry = store_state_is(kms, store_id, "FAILED")
        assert entry["ConnectionErrorCode"] == "XKS_PROXY_NOT_REACHABLE"
        assert_kms_error(
            "CustomKeyStoreInvalidStateException",
            kms.connect_custom_key_store,
            CustomKeyStoreId=store_id,
        )
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        assert "ConnectionErrorCode" not in store_state_is(kms, store_id, "DISCONNECTED")
        # The proxy comes back accepting only its first credential set.
        first = proxy.config["credentials"][0]
        _restart_proxy(proxy, [first])
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)
        entry = store_state_is(kms, store_id, "FAILED")
        assert entry["ConnectionErrorCode"] == "INVALID_CREDENTIALS"
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        kms.update_custom_key_store(
            CustomKeyStoreId=store_id, XksProxyAuthenticationCredential=_credential(proxy, 0)
        )
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)
        store_state_is(kms, store_id, "CONNECTED")
    finally:
        _restart_proxy(proxy)


# -- the secret stays secret ----------------------------------------------------------------


def test_the_secret_is_in_no_audit_event_nor_log(srv: Server, kms: Any, proxy: Proxy) -> None:
    store_id = _create(kms, proxy)
    kms.update_custom_key_store(
        CustomKeyStoreId=store_id, XksProxyAuthenticationCredential=_credential(proxy, 1)
    )
    audit = srv.data_dir / "audit"

    def written() -> None:
        blobs = stored_files(audit).values()
        assert any(b"UpdateCustomKeyStore" in blob for blob in blobs)
        # Every file of the data directory (the SQLite database among them) and the log.
        files = list(stored_files(srv.data_dir).values())
        for secret in _secrets(proxy):
            for blob in [*files, srv.log_path.read_bytes()]:
                assert secret.encode() not in blob

    eventually(written)
