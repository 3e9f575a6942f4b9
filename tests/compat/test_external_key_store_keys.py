"""KMS keys in external key stores, end to end: boto3 → a real Strongroom server → the
bundled ``strongroom xks-proxy --dev`` → SoftHSM2. CreateKey with XksKeyId, double
encryption through every symmetric operation, the requestMetadata the proxy logs, and
every way a proxy can fail: down, slower than 250 ms, a wrong credential, a key disabled
or deleted in the proxy, the proxy restarted, a credential rotated with
UpdateCustomKeyStore."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from conftest import REGION, Server, start_server, stop_server
from strongroom.keystores import softhsm

from ._slow_relay import SlowRelay
from ._support import assert_kms_error, describe_store
from ._xks import Proxy, create_external_store

pytestmark = [
    pytest.mark.compat,
    pytest.mark.hsm,
    pytest.mark.skipif(
        not any(p.is_file() for p in softhsm.MODULE_PATHS), reason="SoftHSM2 is not installed"
    ),
]

EXTRA_KEYS = ("k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9")
CONTEXT = {"purpose": "xks-test", "tenant": "t-1"}


def _proxy_with_keys(data_dir: Path) -> Proxy:
    """A dev proxy whose token also holds the keys EXTRA_KEYS (ENCRYPT and DECRYPT)."""
    proxy = Proxy(data_dir)
    proxy.start()  # makes the token
    proxy.stop()
    proxy.token_keys("create", *EXTRA_KEYS)
    proxy.start()
    return proxy


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    running = _proxy_with_keys(tmp_path_factory.mktemp("xks") / "proxy")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("xks-kms") / "data")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def kms(srv: Server) -> Any:
    return srv.client()


@pytest.fixture(scope="module")
def store(kms: Any, proxy: Proxy) -> str:
    store_id = create_external_store(kms, proxy, "xks-" + uuid.uuid4().hex[:8])
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert describe_store(kms, store_id)["ConnectionState"] == "CONNECTED"
    return store_id


def _xks_key(kms: Any, store_id: str, xks_key_id: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = kms.create_key(
        Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId=xks_key_id, **extra
    )["KeyMetadata"]
    return meta


def test_create_and_describe_a_key_in_an_external_key_store(kms: Any, store: str) -> None:
    meta = _xks_key(kms, store, "k1", Description="backed by k1")
    assert meta["Origin"] == "EXTERNAL_KEY_STORE"
    assert meta["CustomKeyStoreId"] == store
    assert meta["XksKeyConfiguration"] == {"Id": "k1"}
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["KeyState"] == "Enabled"
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert "CloudHsmClusterId" not in meta
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["XksKeyConfiguration"] == {"Id": "k1"}
    assert described["CustomKeyStoreId"] == store


def test_double_encryption_through_every_symmetric_operation(
    kms: Any, store: str, proxy: Proxy
) -> None:
    key = _xks_key(kms, store, "k2")["Arn"]
    plain = b"the external key must consent to every use"
    blob = kms.encrypt(KeyId=key, Plaintext=plain, EncryptionContext=CONTEXT)["CiphertextBlob"]
    assert blob[0] == 3  # the blob format of keys in external key stores
    done = kms.decrypt(CiphertextBlob=blob, EncryptionContext=CONTEXT)
    assert (done["Plaintext"], done["KeyId"]) == (plain, key)
    # A wrong encryption context fails as for any symmetric key.
    assert_kms_error(
        "InvalidCiphertextException",
        kms.decrypt,
        CiphertextBlob=blob,
        EncryptionContext={"purpose": "other"},
    )
    # Data keys.
    data_key = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=CONTEXT)
    opened = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=CONTEXT)
    assert opened["Plaintext"] == data_key["Plaintext"]
    bare = kms.generate_data_key_without_plaintext(KeyId=key, NumberOfBytes=64)
    assert len(kms.decrypt(CiphertextBlob=bare["CiphertextBlob"])["Plaintext"]) == 64
    pair = kms.generate_data_key_pair(KeyId=key, KeyPairSpec="ECC_NIST_P256")
    assert pair["PrivateKeyCiphertextBlob"][0] == 3
    opened = kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"])
    assert opened["Plaintext"] == pair["PrivateKeyPlaintext"]
    # ReEncrypt to a software key and back.
    software = kms.create_key()["KeyMetadata"]["Arn"]
    moved = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext=CONTEXT,
        DestinationKeyId=software,
        DestinationEncryptionContext=CONTEXT,
    )
    assert moved["SourceKeyId"] == key
    back = kms.re_encrypt(
        CiphertextBlob=moved["CiphertextBlob"],
        SourceEncryptionContext=CONTEXT,
        DestinationKeyId=key,
    )
    assert back["CiphertextBlob"][0] == 3
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == plain


def test_the_proxy_logs_each_call_with_the_kms_request_metadata(
    kms: Any, store: str, proxy: Proxy, srv: Server
) -> None:
    key = _xks_key(kms, store, "k3")["Arn"]
    reply = kms.encrypt(KeyId=key, Plaintext=b"secret plaintext never logged")
    request_id = reply["ResponseMetadata"]["RequestId"]
    decrypted = kms.decrypt(CiphertextBlob=reply["CiphertextBlob"])
    caller = srv.client("sts").get_caller_identity()["Arn"]
    logged = proxy.requests_logged()
    encrypts = [e for e in logged if e.get("kmsRequestId") == request_id]
    assert len(encrypts) == 1
    entry = encrypts[0]
    assert entry["kmsOperation"] == "Encrypt"
    assert entry["kmsKeyArn"] == key
    assert entry["awsPrincipalArn"] == caller
    decrypt_id = decrypted["ResponseMetadata"]["RequestId"]
    assert [e["kmsOperation"] for e in logged if e.get("kmsRequestId") == decrypt_id] == ["Decrypt"]
    creates = [e for e in logged if e.get("kmsOperation") == "CreateKey"]
    assert creates, "CreateKey asks the proxy for the external key's metadata"
    text = Path(proxy.config["request_log"]).read_text()
    assert "secret plaintext" not in text
    assert base64.b64encode(b"secret plaintext never logged").decode() not in text


def test_create_key_errors(kms: Any, store: str) -> None:
    _xks_key(kms, store, "k4")
    assert_kms_error("XksKeyAlreadyInUseException", lambda: _xks_key(kms, store, "k4"))
    assert_kms_error("XksKeyNotFoundException", lambda: _xks_key(kms, store, "no-such-key"))
    for unfit in ("encrypt-only", "decrypt-only", "impotent"):
        assert_kms_error(
            "XksKeyInvalidConfigurationException",
            kms.create_key,
            Origin="EXTERNAL_KEY_STORE",
            CustomKeyStoreId=store,
            XksKeyId=unfit,
        )
    assert_kms_error(
        "ValidationException",
        kms.create_key,
        Origin="EXTERNAL_KEY_STORE",
        CustomKeyStoreId=store,
    )
    assert_kms_error("ValidationException", kms.create_key, XksKeyId="k5")
    assert_kms_error(
        "ValidationException", kms.create_key, Origin="EXTERNAL_KEY_STORE", XksKeyId="k5"
    )
    assert_kms_error(
        "UnsupportedOperationException",
        kms.create_key,
        Origin="AWS_CLOUDHSM",
        CustomKeyStoreId=store,
    )
    assert_kms_error(
        "UnsupportedOperationException",
        lambda: _xks_key(kms, store, "k5", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT"),
    )
    assert_kms_error(
        "UnsupportedOperationException", lambda: _xks_key(kms, store, "k5", MultiRegion=True)
    )
    assert_kms_error(
        "CustomKeyStoreNotFoundException", lambda: _xks_key(kms, "cks-1234567890abcdef0", "k5")
    )
    # Nothing was made by the failed calls: k5 is still free.
    assert _xks_key(kms, store, "k5")["XksKeyConfiguration"] == {"Id": "k5"}


def test_keys_in_external_key_stores_do_not_rotate_nor_import_and_are_deleted(
    kms: Any, store: str
) -> None:
    key = _xks_key(kms, store, "k6")["KeyId"]
    assert_kms_error("UnsupportedOperationException", kms.enable_key_rotation, KeyId=key)
    assert_kms_error("UnsupportedOperationException", kms.rotate_key_on_demand, KeyId=key)
    assert_kms_error(
        "UnsupportedOperationException",
        kms.get_parameters_for_import,
        KeyId=key,
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )
    deleting = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert deleting["KeyState"] == "PendingDeletion"
    assert_kms_error("KMSInvalidStateException", kms.encrypt, KeyId=key, Plaintext=b"x")
    kms.cancel_key_deletion(KeyId=key)


# --- failures, each on a proxy and store of its own --------------------------------------


@pytest.fixture
def own(srv: Server, tmp_path: Path) -> Iterator[tuple[Any, Proxy, str, str]]:
    """A fresh proxy, a CONNECTED store on it, a key in it backed by k1, and a client that
    does not retry: (kms, proxy, store id, key ARN)."""
    proxy = _proxy_with_keys(tmp_path / "proxy")
    kms = boto3.client(
        "kms",
        region_name=REGION,
        endpoint_url=srv.endpoint,
        aws_access_key_id=srv.access_key_id,
        aws_secret_access_key=srv.secret_access_key,
        config=Config(retries={"total_max_attempts": 1}),
    )
    store_id = create_external_store(kms, proxy, "own-" + uuid.uuid4().hex[:8])
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    key = _xks_key(kms, store_id, "k1")["Arn"]
    try:
        yield kms, proxy, store_id, key
    finally:
        proxy.stop()
        if describe_store(kms, store_id)["ConnectionState"] != "DISCONNECTED":
            kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)


def _message(kms: Any, code: str, key: str) -> str:
    """The message of Encrypt's error ``code`` under ``key``."""
    message: str = assert_kms_error(code, kms.encrypt, KeyId=key, Plaintext=b"x")["Error"][
        "Message"
    ]
    return message


def test_a_disconnected_store_makes_its_keys_unavailable(
    own: tuple[Any, Proxy, str, str],
) -> None:
    kms, _, store_id, key = own
    blob = kms.encrypt(KeyId=key, Plaintext=b"kept")["CiphertextBlob"]
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Unavailable"
    _message(kms, "KMSInvalidStateException", key)
    assert_kms_error("KMSInvalidStateException", kms.decrypt, CiphertextBlob=blob)
    assert_kms_error("CustomKeyStoreInvalidStateException", lambda: _xks_key(kms, store_id, "k2"))
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"


def test_proxy_down_then_restarted(own: tuple[Any, Proxy, str, str]) -> None:
    kms, proxy, _, key = own
    blob = kms.encrypt(KeyId=key, Plaintext=b"before")["CiphertextBlob"]
    proxy.stop()
    message = _message(kms, "KMSInvalidStateException", key)
    assert "proxy" in message
    assert_kms_error("KMSInvalidStateException", kms.decrypt, CiphertextBlob=blob)
    # The key state is the key's: a failing proxy shows in the errors, not in DescribeKey.
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    proxy.start()
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"
    # A restart with keep-alive connections open: the next calls work too.
    proxy.restart()
    for _ in range(3):
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"


def test_a_proxy_slower_than_250_ms_times_out(
    own: tuple[Any, Proxy, str, str], srv: Server
) -> None:
    kms, proxy, _, _ = own
    with SlowRelay(proxy.port, 0.0) as relay:
        relayed = Proxy(proxy.data_dir)
        relayed.port, relayed.config = relay.port, proxy.config
        store_id = create_external_store(kms, relayed, "slow-" + uuid.uuid4().hex[:8])
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)
        key = _xks_key(kms, store_id, "k2")["Arn"]
        blob = kms.encrypt(KeyId=key, Plaintext=b"quick")["CiphertextBlob"]
        relay.delay = 0.4
        message = _message(kms, "DependencyTimeoutException", key)
        assert "proxy" in message
        assert_kms_error("DependencyTimeoutException", kms.decrypt, CiphertextBlob=blob)
        relay.delay = 0.0
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"quick"
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)


def test_a_key_disabled_then_deleted_in_the_proxy(own: tuple[Any, Proxy, str, str]) -> None:
    kms, proxy, _, key = own
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    proxy.restart(disabled_keys=["k1"])
    message = _message(kms, "KMSInvalidStateException", key)
    assert "not enabled" in message or "disabled" in message
    assert_kms_error("KMSInvalidStateException", kms.decrypt, CiphertextBlob=blob)
    proxy.stop()
    proxy.token_keys("destroy", "k1")
    proxy.restart(disabled_keys=[])
    message = _message(kms, "KMSInvalidStateException", key)
    assert "not found" in message
    assert_kms_error("KMSInvalidStateException", kms.decrypt, CiphertextBlob=blob)


def test_a_wrong_credential_then_a_rotation_with_update_custom_key_store(
    own: tuple[Any, Proxy, str, str],
) -> None:
    kms, proxy, store_id, key = own
    blob = kms.encrypt(KeyId=key, Plaintext=b"rotate")["CiphertextBlob"]
    # The proxy now knows only the second credential set: the store's first one fails.
    second = proxy.config["credentials"][1]
    proxy.restart(credentials=[second])
    message = _message(kms, "KMSInvalidStateException", key)
    assert "authenticat" in message
    # Rotate to the second set while CONNECTED: no reconnection needed.
    kms.update_custom_key_store(
        CustomKeyStoreId=store_id, XksProxyAuthenticationCredential=proxy.credential(0)
    )
    assert (
        describe_store(kms, store_id)["XksProxyConfiguration"]["AccessKeyId"]
        == (second["access_key_id"])
    )
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"rotate"
    assert kms.encrypt(KeyId=key, Plaintext=b"after")["CiphertextBlob"][0] == 3
