"""The bundled XKS proxy (``strongroom xks-proxy --dev``), started for real on an ephemeral
port with a SoftHSM2 token under tmp_path, driven over HTTP with requests signed by
botocore's SigV4Auth for service kms-xks-proxy."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.auth
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ._xks import ALICE, ALICE_NEXT, BOB, FileProxy, Proxy, StartFailed, certificates, running_proxy

PLAINTEXT = b"attack at dawn, bring the secret plaintext"
AAD = b"project=nile,department=marketing"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    yield from running_proxy(tmp_path_factory, "xks")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _metadata(operation: str = "Encrypt", request_id: str = "kms-req-1") -> dict[str, str]:
    return {
        "awsPrincipalArn": "arn:aws:iam::111122223333:user/Alice",
        "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": operation,
        "kmsRequestId": request_id,
    }


def _encrypt_body(aad: bytes | None = AAD, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requestMetadata": _metadata(),
        "plaintext": _b64(PLAINTEXT),
        "encryptionAlgorithm": "AES_GCM",
        **extra,
    }
    if aad is not None:
        body["additionalAuthenticatedData"] = _b64(aad)
    return body


def _decrypt_body(sealed: dict[str, Any], aad: bytes | None = AAD, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requestMetadata": _metadata("Decrypt"),
        "ciphertext": sealed["ciphertext"],
        "encryptionAlgorithm": "AES_GCM",
        "initializationVector": sealed["initializationVector"],
        "authenticationTag": sealed["authenticationTag"],
        **extra,
    }
    if aad is not None:
        body["additionalAuthenticatedData"] = _b64(aad)
    return body


def _error(response: requests.Response, status: int, name: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["errorName"] == name, response.text


def test_dev_mode_writes_its_config_private(proxy: Proxy) -> None:
    path = proxy.data_dir / "xks-proxy.json"
    assert path.stat().st_mode & 0o777 == 0o600
    config = proxy.config
    assert set(config) >= {"uri_prefix", "access_key_id", "secret_access_key", "region", "keys"}
    assert config["keys"] == {
        "foo": ["ENCRYPT", "DECRYPT"],
        "encrypt-only": ["ENCRYPT"],
        "decrypt-only": ["DECRYPT"],
        "impotent": [],
    }
    assert len(config["credentials"]) == 2


def test_health(proxy: Proxy) -> None:
    response = proxy.call(
        "health", {"requestMetadata": {"kmsRequestId": "h-1", "kmsOperation": "KmsHealthCheck"}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["xksProxyFleetSize"] >= 1
    assert body["xksProxyVendor"] and body["xksProxyModel"] and body["ekmVendor"]
    assert [d["healthStatus"] for d in body["ekmFleetDetails"]] == ["ACTIVE"]
    assert body["ekmFleetDetails"][0]["model"] == "SoftHSM v2"


@pytest.mark.parametrize(
    ("key_id", "usage"),
    [
        ("foo", ["ENCRYPT", "DECRYPT"]),
        ("encrypt-only", ["ENCRYPT"]),
        ("decrypt-only", ["DECRYPT"]),
        ("impotent", []),
    ],
)
def test_metadata(proxy: Proxy, key_id: str, usage: list[str]) -> None:
    response = proxy.call(f"keys/{key_id}/metadata", {"requestMetadata": _metadata("CreateKey")})
    assert response.status_code == 200, response.text
    assert response.json() == {"keySpec": "AES_256", "keyUsage": usage, "keyStatus": "ENABLED"}


def test_encrypt_decrypt_round_trip_with_aad_and_integrity_value(proxy: Proxy) -> None:
    response = proxy.call(
        "keys/foo/encrypt", _encrypt_body(ciphertextDataIntegrityValueAlgorithm="SHA_256")
    )
    assert response.status_code == 200, response.text
    sealed = response.json()
    iv = base64.b64decode(sealed["initializationVector"])
    tag = base64.b64decode(sealed["authenticationTag"])
    ciphertext = base64.b64decode(sealed["ciphertext"])
    assert len(iv) == 12 and len(tag) == 16 and len(ciphertext) == len(PLAINTEXT)
    assert ciphertext != PLAINTEXT
    assert "ciphertextMetadata" not in sealed
    expected = hashlib.sha256(AAD + iv + ciphertext + tag).digest()
    assert base64.b64decode(sealed["ciphertextDataIntegrityValue"]) == expected

    response = proxy.call("keys/foo/decrypt", _decrypt_body(sealed))
    assert response.status_code == 200, response.text
    assert base64.b64decode(response.json()["plaintext"]) == PLAINTEXT


def test_no_integrity_value_unless_asked_and_no_aad(proxy: Proxy) -> None:
    sealed = proxy.call("keys/foo/encrypt", _encrypt_body(aad=None)).json()
    assert "ciphertextDataIntegrityValue" not in sealed
    response = proxy.call("keys/foo/decrypt", _decrypt_body(sealed, aad=None))
    assert base64.b64decode(response.json()["plaintext"]) == PLAINTEXT


def test_each_encryption_uses_a_fresh_iv(proxy: Proxy) -> None:
    ivs = {
        proxy.call("keys/foo/encrypt", _encrypt_body()).json()["initializationVector"]
        for _ in range(5)
    }
    assert len(ivs) == 5


@pytest.mark.parametrize(
    "variant", ["wrong aad", "no aad", "aad as metadata", "tag", "ciphertext", "iv"]
)
def test_tampered_decrypt_is_invalid_ciphertext(proxy: Proxy, variant: str) -> None:
    sealed = proxy.call("keys/foo/encrypt", _encrypt_body()).json()
    if variant == "wrong aad":
        body = _decrypt_body(sealed, aad=AAD + b"!")
    elif variant == "no aad":
        body = _decrypt_body(sealed, aad=None)
    elif variant == "aad as metadata":  # the lengths in the GCM AAD tell these apart
        body = _decrypt_body(sealed, aad=None, ciphertextMetadata=_b64(AAD[:20]))
    else:
        field = {
            "tag": "authenticationTag",
            "ciphertext": "ciphertext",
            "iv": "initializationVector",
        }[variant]
        raw = bytearray(base64.b64decode(sealed[field]))
        raw[0] ^= 1
        body = _decrypt_body({**sealed, field: _b64(bytes(raw))})
    _error(proxy.call("keys/foo/decrypt", body), 400, "InvalidCiphertextException")


def test_key_usage_is_honoured(proxy: Proxy) -> None:
    sealed = proxy.call("keys/encrypt-only/encrypt", _encrypt_body())
    assert sealed.status_code == 200, sealed.text
    _error(
        proxy.call("keys/encrypt-only/decrypt", _decrypt_body(sealed.json())),
        400,
        "InvalidKeyUsageException",
    )
    _error(
        proxy.call("keys/decrypt-only/encrypt", _encrypt_body()), 400, "InvalidKeyUsageException"
    )
    # an integrity value promises that the ciphertext decrypts: not with an encrypt-only key
    with_cdiv = _encrypt_body(ciphertextDataIntegrityValueAlgorithm="SHA_256")
    _error(proxy.call("keys/encrypt-only/encrypt", with_cdiv), 400, "InvalidKeyUsageException")
    _error(proxy.call("keys/impotent/encrypt", _encrypt_body()), 400, "InvalidKeyUsageException")
    _error(
        proxy.call("keys/impotent/decrypt", _decrypt_body(sealed.json())),
        400,
        "InvalidKeyUsageException",
    )
    # decrypt-only may decrypt: a ciphertext of another key is simply not its own
    _error(
        proxy.call("keys/decrypt-only/decrypt", _decrypt_body(sealed.json())),
        400,
        "InvalidCiphertextException",
    )


def test_unknown_key(proxy: Proxy) -> None:
    _error(
        proxy.call("keys/no-such-key/metadata", {"requestMetadata": _metadata()}),
        404,
        "KeyNotFoundException",
    )
    _error(proxy.call("keys/no-such-key/encrypt", _encrypt_body()), 404, "KeyNotFoundException")
    # the health check's probe key is no external key
    probe = proxy.call(
        "keys/strongroom-xks-health-probe/metadata", {"requestMetadata": _metadata()}
    )
    _error(probe, 404, "KeyNotFoundException")


def test_invalid_requests(proxy: Proxy) -> None:
    _error(proxy.call("keys/foo/metadata", {}), 400, "ValidationException")
    _error(
        proxy.call("keys/foo/encrypt", _encrypt_body(encryptionAlgorithm="AES_CBC")),
        400,
        "ValidationException",
    )
    body = _encrypt_body()
    body["plaintext"] = "not base64!"
    _error(proxy.call("keys/foo/encrypt", body), 400, "ValidationException")
    _error(proxy.call("keys/foo/bar", {}), 404, "InvalidUriPathException")
    _error(
        proxy.call("health", {"requestMetadata": {}}, prefix="/elsewhere"),
        404,
        "InvalidUriPathException",
    )


def test_get_is_405(proxy: Proxy) -> None:
    assert requests.get(proxy.url("health"), timeout=10).status_code == 405
    assert requests.get(proxy.url("keys/foo/metadata"), timeout=10).status_code == 405


def test_authentication_failures(proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    health = {"requestMetadata": {"kmsRequestId": "h-2", "kmsOperation": "KmsHealthCheck"}}
    wrong_secret = base64.b64encode(os.urandom(32)).decode()
    _error(proxy.call("health", health, secret=wrong_secret), 401, "AuthenticationFailedException")
    _error(
        proxy.call("health", health, access_key_id="UNKNOWNACCESSKEY"),
        401,
        "AuthenticationFailedException",
    )
    _error(proxy.call("health", health, service="kms"), 401, "AuthenticationFailedException")
    _error(proxy.call("health", health, region="eu-west-3"), 401, "AuthenticationFailedException")
    unsigned = requests.post(proxy.url("health"), json=health, timeout=10)
    _error(unsigned, 401, "AuthenticationFailedException")
    for minutes in (-6, 6):
        skewed = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=minutes)
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, s=skewed, **k: s)
        _error(proxy.call("health", health), 401, "AuthenticationFailedException")
    within = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=4)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: within)
    assert proxy.call("health", health).status_code == 200


def test_second_credential_set_works(proxy: Proxy) -> None:
    second = proxy.config["credentials"][1]
    assert second["access_key_id"] != proxy.config["access_key_id"]
    response = proxy.call(
        "keys/foo/encrypt",
        _encrypt_body(),
        access_key_id=second["access_key_id"],
        secret=second["secret_access_key"],
    )
    assert response.status_code == 200, response.text


def test_request_log_names_requests_never_plaintext(proxy: Proxy) -> None:
    proxy.call(
        "keys/foo/encrypt", {**_encrypt_body(), "requestMetadata": _metadata(request_id="log-me-7")}
    )
    log = (proxy.data_dir / "xks-proxy-requests.log").read_text()
    assert _b64(PLAINTEXT) not in log and PLAINTEXT.decode() not in log
    assert proxy.config["secret_access_key"] not in log
    entries = [json.loads(line) for line in log.splitlines()]
    mine = [e for e in entries if e.get("kmsRequestId") == "log-me-7"]
    assert len(mine) == 1
    assert mine[0]["keyId"] == "foo" and mine[0]["operation"] == "Encrypt"
    assert mine[0]["caller"] == proxy.config["access_key_id"]
    assert mine[0]["status"] == 200


def test_restart_keeps_keys_and_credentials(tmp_path: Path) -> None:
    first = Proxy(tmp_path / "data")
    first.start()
    try:
        sealed = first.call("keys/foo/encrypt", _encrypt_body()).json()
    finally:
        first.stop()
    config = {**first.config, "disabled_keys": ["encrypt-only"]}
    (tmp_path / "data" / "xks-proxy.json").write_text(json.dumps(config))
    second = Proxy(tmp_path / "data")
    second.start()
    try:
        assert second.config == config
        response = second.call("keys/foo/decrypt", _decrypt_body(sealed))
        assert base64.b64decode(response.json()["plaintext"]) == PLAINTEXT
        # a key disabled in xks-proxy.json is DISABLED after the restart
        status = second.call("keys/encrypt-only/metadata", {"requestMetadata": _metadata()})
        assert status.json()["keyStatus"] == "DISABLED"
        _error(
            second.call("keys/encrypt-only/encrypt", _encrypt_body()), 400, "InvalidStateException"
        )
        assert (
            second.call("keys/foo/metadata", {"requestMetadata": _metadata()}).json()["keyStatus"]
            == "ENABLED"
        )
    finally:
        second.stop()


# --- the TOML configuration ------------------------------------------------------------


def test_toml_configuration(tmp_path: Path) -> None:
    proxy = FileProxy(tmp_path)
    proxy.start()
    try:
        metadata = {"requestMetadata": _metadata("CreateKey")}
        assert proxy.call("keys/k1/metadata", metadata).json()["keyUsage"] == ["ENCRYPT", "DECRYPT"]
        assert proxy.call("keys/k2/metadata", metadata).json()["keyUsage"] == ["ENCRYPT"]
        # a disabled key says so and refuses to work
        assert proxy.call("keys/k3/metadata", metadata).json()["keyStatus"] == "DISABLED"
        _error(proxy.call("keys/k3/encrypt", _encrypt_body()), 400, "InvalidStateException")
        # a token object that is not listed is no external key
        _error(proxy.call("keys/unlisted/metadata", metadata), 404, "KeyNotFoundException")
        sealed = proxy.call("keys/k1/encrypt", _encrypt_body()).json()
        # the prefix's second credential (secret from the environment) works too
        second = proxy.call(
            "keys/k1/decrypt",
            _decrypt_body(sealed),
            access_key_id=ALICE_NEXT[0],
            secret=ALICE_NEXT[1],
        )
        assert base64.b64decode(second.json()["plaintext"]) == PLAINTEXT
        # credentials belong to their prefix: Bob's work on "" and nowhere else
        bob = {"access_key_id": BOB[0], "secret": BOB[1]}
        _error(
            proxy.call("keys/k1/metadata", metadata, **bob), 401, "AuthenticationFailedException"
        )
        assert proxy.call("keys/k1/metadata", metadata, prefix="", **bob).status_code == 200
        _error(
            proxy.call("keys/k1/metadata", metadata, prefix=""),
            401,
            "AuthenticationFailedException",
        )
        log = (tmp_path / "requests.log").read_text()
        assert "CreateKey" in log and _b64(PLAINTEXT) not in log
    finally:
        proxy.stop()


def test_toml_wrong_pin_fails_the_start(tmp_path: Path) -> None:
    proxy = FileProxy(tmp_path, pin="not-the-pin")
    with pytest.raises(StartFailed) as failed:
        proxy.start()
    assert "PIN" in str(failed.value) and "not-the-pin" not in str(failed.value)


def test_toml_mutual_tls(tmp_path: Path) -> None:
    proxy = FileProxy(tmp_path)
    certs = certificates(tmp_path)
    with proxy.file.open("a") as out:
        out.write(
            f'\n[tls]\ncert_file = "{certs["server"]}"\nkey_file = "{certs["server-key"]}"\n'
            f'client_ca_file = "{certs["ca"]}"\n'
        )
    proxy.start()
    try:
        request = AWSRequest(
            "POST",
            f"https://127.0.0.1:{proxy.port}/alice/kms/xks/v1/health",
            data=json.dumps(
                {"requestMetadata": {"kmsRequestId": "t", "kmsOperation": "KmsHealthCheck"}}
            ).encode(),
            headers={"content-type": "application/json"},
        )
        SigV4Auth(Credentials(*ALICE), "kms-xks-proxy", "eu-west-1").add_auth(request)
        prepared = request.prepare()

        def post(cert: tuple[str, str] | None) -> requests.Response:
            return requests.post(
                prepared.url,
                data=prepared.body,
                headers=dict(prepared.headers),
                verify=str(certs["ca"]),
                cert=cert,
                timeout=10,
            )

        assert post((str(certs["client"]), str(certs["client-key"]))).status_code == 200
        for refused in (None, (str(certs["stranger"]), str(certs["stranger-key"]))):
            with pytest.raises(requests.exceptions.RequestException):
                post(refused)
        with pytest.raises(requests.exceptions.RequestException):
            requests.post(prepared.url.replace("https", "http"), data=prepared.body, timeout=10)
    finally:
        proxy.stop()


def test_health_and_errors_when_the_token_is_gone(tmp_path: Path) -> None:
    import shutil

    proxy = Proxy(tmp_path / "data")
    proxy.start()
    try:
        health = {"requestMetadata": {"kmsRequestId": "h", "kmsOperation": "KmsHealthCheck"}}
        assert proxy.call("health", health).json()["ekmFleetDetails"][0]["healthStatus"] == "ACTIVE"
        tokens = proxy.data_dir / "softhsm" / "tokens"
        shutil.move(tokens, tmp_path / "tokens-away")
        time.sleep(0.3)  # at most one module re-initialisation per 0.25 s
        response = proxy.call("health", health)
        assert response.status_code == 200, response.text
        assert response.json()["ekmFleetDetails"][0]["healthStatus"] == "UNAVAILABLE"
        time.sleep(0.3)
        _error(proxy.call("keys/foo/encrypt", _encrypt_body()), 500, "InternalException")
        shutil.move(tmp_path / "tokens-away", tokens)
        time.sleep(0.3)
        assert proxy.call("health", health).json()["ekmFleetDetails"][0]["healthStatus"] == "ACTIVE"
        assert proxy.call("keys/foo/encrypt", _encrypt_body()).status_code == 200
    finally:
        proxy.stop()
