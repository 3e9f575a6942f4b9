"""The XKS client (keystores.xks_client) against the bundled proxy, started for real
(``strongroom xks-proxy --dev`` on SoftHSM2, and ``--config`` with TLS), and against small
test-side servers for what a good proxy never does (slow, garbage, a wrong integrity value)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from conftest import free_port
from strongroom.keystores import softhsm
from strongroom.keystores.loop_bridge import run_bridged
from strongroom.keystores.xks_client import (
    Failure,
    Health,
    Wrapped,
    XksCall,
    XksClient,
    XksEndpoint,
    XksError,
)

from ._slow_relay import SlowRelay
from ._xks import ALICE, FileProxy, Proxy, certificates, running_proxy

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(
        not any(p.is_file() for p in softhsm.MODULE_PATHS), reason="SoftHSM2 is not installed"
    ),
]

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ENCRYPT = XksCall("req-1", "Encrypt", "arn:aws:iam::111122223333:user/Alice", KEY_ARN)
DECRYPT = XksCall("req-2", "Decrypt", "arn:aws:iam::111122223333:user/Alice", KEY_ARN)
CREATE_KEY = XksCall("req-3", "CreateKey", "arn:aws:iam::111122223333:user/Alice")
HEALTH = XksCall("req-4", "ConnectCustomKeyStore")
PLAINTEXT = b"the KMS's own ciphertext of a data key, 60-odd bytes long......"
AAD = b"\x01 the blob header and the encryption context"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    yield from running_proxy(tmp_path_factory, "xks-client")


def endpoint(proxy: Proxy, *, port: int | None = None, **changes: Any) -> XksEndpoint:
    config = proxy.config
    fields: dict[str, Any] = {
        "uri_endpoint": f"http://127.0.0.1:{port or proxy.port}",
        "uri_path": f"{config['uri_prefix']}/kms/xks/v1",
        "region": config["region"],
        "access_key_id": config["access_key_id"],
        "secret_access_key": config["secret_access_key"],
        **changes,
    }
    return XksEndpoint(**fields)


@pytest.fixture(scope="module")
def client(proxy: Proxy) -> Iterator[XksClient]:
    made = XksClient(endpoint(proxy), timeout=2.0)  # generous: CI machines are slow
    yield made
    made.close()


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop (uvloop, as the server's) running in a thread of its own."""
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


@pytest.fixture(autouse=True, params=["blocking", "on the loop"])
def where(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: the client's calls made from a plain thread (blocking on HttpPool)
    and from a handler the pipeline runs on the loop's bridge (awaiting AsyncHttpPool), as
    the server makes them."""
    if request.param == "on the loop":
        loop = request.getfixturevalue("loop_thread")
        blocking = XksClient._call

        def on_the_loop(self: XksClient, *args: Any) -> dict[str, Any]:
            bridged = run_bridged(blocking, self, *args)
            return asyncio.run_coroutine_threadsafe(bridged, loop).result()

        monkeypatch.setattr(XksClient, "_call", on_the_loop)
    return str(request.param)


def opened(client: XksClient) -> int:
    """The connections ``client`` opened, wherever its calls were made."""
    return client._pool.opened + client._loop_pool.opened


def failure_of(call: Any, *args: Any) -> Failure:
    with pytest.raises(XksError) as raised:
        call(*args)
    return raised.value.failure


# --- against the bundled proxy ----------------------------------------------------------


def test_health_reports_the_token(client: XksClient) -> None:
    health = client.health(HEALTH)
    assert health == Health(("ACTIVE",))
    assert not health.all_unavailable


@pytest.mark.parametrize(
    ("key_id", "usage"),
    [
        ("foo", ("ENCRYPT", "DECRYPT")),
        ("encrypt-only", ("ENCRYPT",)),
        ("decrypt-only", ("DECRYPT",)),
        ("impotent", ()),
    ],
)
def test_key_metadata(client: XksClient, key_id: str, usage: tuple[str, ...]) -> None:
    metadata = client.key_metadata(key_id, CREATE_KEY)
    assert (metadata.key_spec, metadata.key_usage, metadata.key_status) == (
        "AES_256",
        usage,
        "ENABLED",
    )


def test_encrypt_decrypt_round_trip_with_aad(client: XksClient) -> None:
    wrapped = client.encrypt("foo", PLAINTEXT, AAD, ENCRYPT)
    assert len(wrapped.iv) == 12 and len(wrapped.tag) == 16
    assert len(wrapped.ciphertext) == len(PLAINTEXT) and wrapped.ciphertext != PLAINTEXT
    assert wrapped.metadata is None
    # what a ciphertext blob keeps of it is enough to decrypt
    again = Wrapped.from_bytes(wrapped.to_bytes())
    assert client.decrypt("foo", again, AAD, DECRYPT) == PLAINTEXT
    assert client.encrypt("foo", PLAINTEXT, AAD, ENCRYPT).iv != wrapped.iv


def test_encrypt_decrypt_without_aad(client: XksClient) -> None:
    wrapped = client.encrypt("foo", PLAINTEXT, b"", ENCRYPT)
    assert client.decrypt("foo", wrapped, b"", DECRYPT) == PLAINTEXT


def test_decrypt_with_other_aad_or_tampered_parts_is_invalid_ciphertext(
    client: XksClient,
) -> None:
    wrapped = client.encrypt("foo", PLAINTEXT, AAD, ENCRYPT)
    flipped = bytes([wrapped.tag[0] ^ 1]) + wrapped.tag[1:]
    for aad, changed in (
        (AAD + b"!", wrapped),
        (b"", wrapped),
        (AAD, Wrapped(wrapped.ciphertext, wrapped.iv, flipped, None)),
        (AAD, Wrapped(wrapped.ciphertext, wrapped.iv, wrapped.tag, b"meta")),
    ):
        assert failure_of(client.decrypt, "foo", changed, aad, DECRYPT) is (
            Failure.INVALID_CIPHERTEXT
        )


def test_request_metadata_reaches_the_proxy(proxy: Proxy, client: XksClient) -> None:
    call = XksCall("meta-77", "GenerateDataKey", "arn:aws:iam::111122223333:role/R", KEY_ARN)
    client.encrypt("foo", PLAINTEXT, AAD, call)
    client.key_metadata("foo", XksCall("meta-78", "CreateKey", call.aws_principal_arn))
    client.health(XksCall("meta-79", "KmsHealthCheck", call.aws_principal_arn, KEY_ARN))
    log = (proxy.data_dir / "xks-proxy-requests.log").read_text()
    entries = {e.get("kmsRequestId"): e for e in map(json.loads, log.splitlines())}
    assert entries["meta-77"]["kmsOperation"] == "GenerateDataKey"
    assert entries["meta-77"]["awsPrincipalArn"] == call.aws_principal_arn
    assert entries["meta-77"]["kmsKeyArn"] == KEY_ARN
    assert entries["meta-77"]["caller"] == proxy.config["access_key_id"]
    assert entries["meta-78"]["operation"] == "GetKeyMetadata"
    assert entries["meta-78"]["kmsKeyArn"] is None
    # the health check carries only the request id and the operation, as the spec says
    assert entries["meta-79"]["awsPrincipalArn"] is None
    assert entries["meta-79"]["kmsOperation"] == "KmsHealthCheck"
    assert base64.b64encode(PLAINTEXT).decode() not in log


def test_unknown_key_is_key_not_found(client: XksClient) -> None:
    assert failure_of(client.key_metadata, "no-such-key", CREATE_KEY) is Failure.KEY_NOT_FOUND
    assert failure_of(client.encrypt, "no-such-key", b"x", AAD, ENCRYPT) is (Failure.KEY_NOT_FOUND)


def test_key_usage_refused_is_invalid_key_usage(client: XksClient) -> None:
    assert failure_of(client.encrypt, "decrypt-only", PLAINTEXT, AAD, ENCRYPT) is (
        Failure.INVALID_KEY_USAGE
    )
    # The client always asks for the integrity value, which promises a decryptable
    # ciphertext: an encrypt-only key cannot give one (the bundled proxy refuses).
    assert failure_of(client.encrypt, "encrypt-only", PLAINTEXT, AAD, ENCRYPT) is (
        Failure.INVALID_KEY_USAGE
    )
    wrapped = client.encrypt("foo", PLAINTEXT, AAD, ENCRYPT)
    assert failure_of(client.decrypt, "impotent", wrapped, AAD, DECRYPT) is (
        Failure.INVALID_KEY_USAGE
    )


def test_wrong_secret_or_region_is_authentication_failed(proxy: Proxy) -> None:
    wrong_secret = base64.b64encode(os.urandom(32)).decode()
    for changes in (
        {"secret_access_key": wrong_secret},
        {"access_key_id": "NOSUCHACCESSKEYID00000"},
        {"region": "eu-west-3"},
    ):
        with XksClient(endpoint(proxy, **changes), timeout=2.0) as wrong:
            assert failure_of(wrong.health, HEALTH) is Failure.AUTHENTICATION_FAILED
            assert failure_of(wrong.key_metadata, "foo", CREATE_KEY) is (
                Failure.AUTHENTICATION_FAILED
            )


def test_wrong_path_prefix_is_invalid_uri_path(proxy: Proxy) -> None:
    with XksClient(endpoint(proxy, uri_path="/elsewhere/kms/xks/v1"), timeout=2.0) as wrong:
        assert failure_of(wrong.health, HEALTH) is Failure.INVALID_URI_PATH
        assert failure_of(wrong.encrypt, "foo", PLAINTEXT, AAD, ENCRYPT) is (
            Failure.INVALID_URI_PATH
        )


def test_second_credential_set_works(proxy: Proxy) -> None:
    second = proxy.config["credentials"][1]
    changes = {
        "access_key_id": second["access_key_id"],
        "secret_access_key": second["secret_access_key"],
    }
    with XksClient(endpoint(proxy, **changes), timeout=2.0) as rotated:
        assert rotated.health(HEALTH).statuses == ("ACTIVE",)
        wrapped = rotated.encrypt("foo", PLAINTEXT, AAD, ENCRYPT)
    with XksClient(endpoint(proxy), timeout=2.0) as first:
        assert first.decrypt("foo", wrapped, AAD, DECRYPT) == PLAINTEXT


def test_connections_are_kept_alive(proxy: Proxy) -> None:
    with XksClient(endpoint(proxy), timeout=2.0) as fresh:
        for _ in range(20):
            fresh.encrypt("foo", PLAINTEXT, AAD, ENCRYPT)
        assert opened(fresh) == 1


def test_many_threads_share_one_client(client: XksClient) -> None:
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                wrapped = client.encrypt("foo", PLAINTEXT, AAD, ENCRYPT)
                assert client.decrypt("foo", wrapped, AAD, DECRYPT) == PLAINTEXT
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# --- the network ----------------------------------------------------------------------


def test_nothing_listening_is_unreachable(proxy: Proxy) -> None:
    with XksClient(endpoint(proxy, port=free_port())) as nowhere:
        assert failure_of(nowhere.health, HEALTH) is Failure.UNREACHABLE
        assert failure_of(nowhere.encrypt, "foo", PLAINTEXT, AAD, ENCRYPT) is (Failure.UNREACHABLE)


def test_unknown_host_is_unreachable(proxy: Proxy) -> None:
    ep = endpoint(proxy, uri_endpoint="http://no-such-host.invalid:1234")
    with XksClient(ep, timeout=2.0) as nowhere:
        assert failure_of(nowhere.health, HEALTH) is Failure.UNREACHABLE


def test_a_proxy_slower_than_the_timeout_times_out(proxy: Proxy) -> None:
    with (
        SlowRelay(proxy.port, 0.0) as relay,
        XksClient(endpoint(proxy, port=relay.port)) as slow,  # the default: 250 ms
    ):
        slow.health(HEALTH)  # warm: the relay adds nothing yet
        relay.delay = 0.6
        began = time.monotonic()
        with pytest.raises(XksError) as raised:
            slow.encrypt("foo", PLAINTEXT, AAD, ENCRYPT)
        assert raised.value.failure is Failure.TIMED_OUT
        assert 0.2 < time.monotonic() - began < 0.55
        relay.delay = 0.0
        # a timed-out connection is not reused; the next call works
        assert slow.health(HEALTH).statuses == ("ACTIVE",)


def test_a_connection_the_proxy_dropped_is_replaced(proxy: Proxy) -> None:
    with (
        SlowRelay(proxy.port) as relay,
        XksClient(endpoint(proxy, port=relay.port), timeout=2.0) as kept,
    ):
        kept.health(HEALTH)
        relay.drop()  # as a proxy restart closes its kept-alive connections
        wrapped = kept.encrypt("foo", PLAINTEXT, AAD, ENCRYPT)
        relay.drop()
        assert kept.decrypt("foo", wrapped, AAD, DECRYPT) == PLAINTEXT


# --- servers that answer wrongly --------------------------------------------------------


class CannedServer:
    """Answers every request on a connection with ``reply`` (raw bytes: HTTP or not)."""

    def __init__(self, reply: bytes = b"") -> None:
        self.reply = reply
        self.close_after = False  # end the connection after each answer
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> CannedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            try:
                while True:
                    head, found, rest = buffer.partition(b"\r\n\r\n")
                    if not found:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buffer += chunk
                        continue
                    length = 0
                    for line in head.split(b"\r\n"):
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while len(rest) < length:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        rest += chunk
                    buffer = rest[length:]
                    # Both read before answering: the client may change them as soon as it
                    # has the answer.
                    reply, close_after = self.reply, self.close_after
                    conn.sendall(reply)
                    if close_after:
                        return
            except OSError:
                return


def http(status: int, body: bytes | dict[str, Any] | list[Any]) -> bytes:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (
        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    ).encode() + payload


@pytest.fixture
def canned(proxy: Proxy) -> Iterator[tuple[CannedServer, XksClient]]:
    with CannedServer() as server, XksClient(endpoint(proxy, port=server.port), timeout=2.0) as c:
        yield server, c


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sealed(aad: bytes = AAD, **changes: Any) -> dict[str, Any]:
    """A well-formed encrypt answer for PLAINTEXT and ``aad``, with ``changes``."""
    iv, tag, ciphertext = os.urandom(12), os.urandom(16), os.urandom(len(PLAINTEXT))
    metadata = changes.pop("_metadata", b"")
    answer = {
        "ciphertext": b64(ciphertext),
        "initializationVector": b64(iv),
        "authenticationTag": b64(tag),
        "ciphertextDataIntegrityValue": b64(
            hashlib.sha256(aad + metadata + iv + ciphertext + tag).digest()
        ),
    }
    if metadata:
        answer["ciphertextMetadata"] = b64(metadata)
    answer.update(changes)
    return {k: v for k, v in answer.items() if v is not None}


def test_canned_good_answers_pass(canned: tuple[CannedServer, XksClient]) -> None:
    server, client = canned
    server.reply = http(200, sealed(_metadata=b"key_version=1"))
    wrapped = client.encrypt("foo", PLAINTEXT, AAD, ENCRYPT)
    assert wrapped.metadata == b"key_version=1"
    assert Wrapped.from_bytes(wrapped.to_bytes()) == wrapped


def test_any_http_framing_of_an_answer_is_read(canned: tuple[CannedServer, XksClient]) -> None:
    server, client = canned
    health = json.dumps(health_answer("ACTIVE")).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (health[:10], health[10:]))
    server.reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n"
    assert client.health(HEALTH).statuses == ("ACTIVE",)
    assert client.health(HEALTH).statuses == ("ACTIVE",)
    assert opened(client) == 1  # kept alive
    server.reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + health
    server.close_after = True  # a body that ends with the connection
    assert client.health(HEALTH).statuses == ("ACTIVE",)  # on the kept connection, ending it
    assert client.health(HEALTH).statuses == ("ACTIVE",)
    assert opened(client) == 2


def test_an_interim_100_continue_is_skipped(canned: tuple[CannedServer, XksClient]) -> None:
    server, client = canned
    health = json.dumps(health_answer("ACTIVE")).encode()
    server.reply = b"HTTP/1.1 100 Continue\r\n\r\n" + http(200, health)
    assert client.health(HEALTH).statuses == ("ACTIVE",)
    assert client.health(HEALTH).statuses == ("ACTIVE",)
    assert opened(client) == 1


def test_an_answer_cut_short_is_malformed_and_no_answer_unreachable(
    canned: tuple[CannedServer, XksClient],
) -> None:
    server, client = canned
    server.close_after = True
    server.reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}"
    assert failure_of(client.health, HEALTH) is Failure.MALFORMED
    server.reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}"
    assert failure_of(client.health, HEALTH) is Failure.MALFORMED
    server.reply = b""  # the connection ends without an answer
    assert failure_of(client.health, HEALTH) is Failure.UNREACHABLE


def test_an_answer_too_long_is_malformed(canned: tuple[CannedServer, XksClient]) -> None:
    server, client = canned
    server.reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n{}"
    assert failure_of(client.health, HEALTH) is Failure.MALFORMED
    server.reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b" " * 1_100_000
    server.close_after = True
    assert failure_of(client.health, HEALTH) is Failure.MALFORMED


def test_the_specs_integrity_value_example_passes(
    canned: tuple[CannedServer, XksClient],
) -> None:
    # XKS Proxy API spec, Encrypt's response example and Appendix C
    server, client = canned
    server.reply = http(
        200,
        {
            "authenticationTag": "vBxN2ncH1oEkR8WVXpmyYQ==",
            "ciphertext": "ghxkK1txeDNn3q8Y",
            "ciphertextDataIntegrityValue": "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=",
            "ciphertextMetadata": "a2V5X3ZlcnNpb249MQ==",
            "initializationVector": "HMrlRw85cAJUd5Ax",
        },
    )
    aad = b"project=nile,department=marketing"
    wrapped = client.encrypt("foo", b"Hello World!", aad, ENCRYPT)
    assert wrapped.metadata == b"key_version=1"
    assert failure_of(client.encrypt, "foo", b"Hello World!", aad[:-1], ENCRYPT) is (
        Failure.MALFORMED
    )


def test_a_closed_client_fails_unreachable(proxy: Proxy) -> None:
    closed = XksClient(endpoint(proxy), timeout=2.0)
    closed.health(HEALTH)
    closed.close()
    assert failure_of(closed.health, HEALTH) is Failure.UNREACHABLE


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(sealed(ciphertextDataIntegrityValue=b64(b"\0" * 32)), id="wrong cdiv"),
        pytest.param(sealed(aad=b""), id="cdiv without the aad"),
        pytest.param(sealed(ciphertextDataIntegrityValue=None), id="no cdiv"),
        pytest.param(sealed(ciphertext=None), id="no ciphertext"),
        pytest.param(sealed(initializationVector=b64(b"\0" * 8)), id="short iv"),
        pytest.param(sealed(authenticationTag=b64(b"\0" * 12)), id="short tag"),
        pytest.param(sealed(ciphertext=b64(b"\0" * 3)), id="ciphertext length"),
        pytest.param(sealed(_metadata=b"m" * 21), id="metadata over 20 bytes"),
        pytest.param(sealed(ciphertext="not base64!"), id="not base64"),
        pytest.param(sealed(ciphertext=7), id="not a string"),
    ],
)
def test_bad_encrypt_answers_are_malformed(
    canned: tuple[CannedServer, XksClient], answer: dict[str, Any]
) -> None:
    server, client = canned
    server.reply = http(200, answer)
    assert failure_of(client.encrypt, "foo", PLAINTEXT, AAD, ENCRYPT) is Failure.MALFORMED


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(b"garbage, not HTTP at all\r\n\r\n", id="not http"),
        pytest.param(http(200, b"<html>hello</html>"), id="not json"),
        pytest.param(http(200, [1, 2]), id="not an object"),
        pytest.param(http(500, b""), id="error without a body"),
        pytest.param(http(400, b"oops"), id="error with text"),
        pytest.param(http(400, {"errorName": "NoSuchException"}), id="unknown errorName"),
        pytest.param(http(302, {"location": "x"}), id="redirect"),
        pytest.param(http(200, {"xksProxyFleetSize": 1}), id="health without details"),
    ],
)
def test_garbage_is_malformed(canned: tuple[CannedServer, XksClient], reply: bytes) -> None:
    server, client = canned
    server.reply = reply
    assert failure_of(client.health, HEALTH) is Failure.MALFORMED


def health_answer(*statuses: str, **changes: Any) -> dict[str, Any]:
    answer = {
        "xksProxyFleetSize": 2,
        "xksProxyVendor": "Acme",
        "xksProxyModel": "Acme 1",
        "ekmVendor": "Acme",
        "ekmFleetDetails": [
            {"id": f"h{i}", "model": "m", "healthStatus": s} for i, s in enumerate(statuses)
        ],
    }
    answer.update(changes)
    return answer


def test_health_answers(canned: tuple[CannedServer, XksClient]) -> None:
    server, client = canned
    server.reply = http(200, health_answer("UNAVAILABLE", "UNAVAILABLE"))
    assert client.health(HEALTH).all_unavailable
    server.reply = http(200, health_answer("UNAVAILABLE", "DEGRADED"))
    assert not client.health(HEALTH).all_unavailable
    for bad in (
        health_answer(),
        health_answer(*["ACTIVE"] * 11),
        health_answer("SLEEPY"),
        health_answer("ACTIVE", xksProxyFleetSize=0),
        health_answer("ACTIVE", xksProxyFleetSize=True),
        health_answer("ACTIVE", ekmVendor=None),
    ):
        server.reply = http(200, bad)
        assert failure_of(client.health, HEALTH) is Failure.MALFORMED


@pytest.mark.parametrize(
    ("status", "name", "failure"),
    [
        (400, "ValidationException", Failure.VALIDATION),
        (400, "InvalidStateException", Failure.INVALID_STATE),
        (403, "AccessDeniedException", Failure.ACCESS_DENIED),
        (429, "ThrottlingException", Failure.THROTTLING),
        (501, "UnsupportedOperationException", Failure.UNSUPPORTED_OPERATION),
        (503, "DependencyTimeoutException", Failure.DEPENDENCY_TIMEOUT),
        (500, "InternalException", Failure.INTERNAL),
    ],
)
def test_proxy_error_names(
    canned: tuple[CannedServer, XksClient], status: int, name: str, failure: Failure
) -> None:
    server, client = canned
    server.reply = http(status, {"errorName": name, "errorMessage": "details\x00 for the log"})
    with pytest.raises(XksError) as raised:
        client.key_metadata("foo", CREATE_KEY)
    assert raised.value.failure is failure
    assert "details for the log" in raised.value.detail


def test_metadata_answers(canned: tuple[CannedServer, XksClient]) -> None:
    server, client = canned
    good = {
        "keySpec": "AES_256",
        "keyUsage": ["ENCRYPT", "DECRYPT", "WRAP"],
        "keyStatus": "DISABLED",
    }
    server.reply = http(200, good)
    assert client.key_metadata("foo", CREATE_KEY).key_usage == ("ENCRYPT", "DECRYPT", "WRAP")
    for bad in (
        {**good, "keySpec": None},
        {**good, "keyUsage": "ENCRYPT"},
        {**good, "keyUsage": ["ENCRYPT"] * 11},
        {**good, "keyStatus": "PENDING"},
    ):
        server.reply = http(200, bad)
        assert failure_of(client.key_metadata, "foo", CREATE_KEY) is Failure.MALFORMED


def test_decrypt_answer_must_be_the_plaintext(canned: tuple[CannedServer, XksClient]) -> None:
    server, client = canned
    wrapped = Wrapped(b"c" * 10, b"i" * 12, b"t" * 16, None)
    server.reply = http(200, {"plaintext": b64(b"p" * 10)})
    assert client.decrypt("foo", wrapped, AAD, DECRYPT) == b"p" * 10
    for bad in ({}, {"plaintext": b64(b"p" * 9)}, {"plaintext": "%%"}):
        server.reply = http(200, bad)
        assert failure_of(client.decrypt, "foo", wrapped, AAD, DECRYPT) is Failure.MALFORMED


# --- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_proxy(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FileProxy, dict[str, Path]]]:
    tmp_path = tmp_path_factory.mktemp("xks-client-tls")
    running = FileProxy(tmp_path)
    certs = certificates(tmp_path)
    with running.file.open("a") as out:
        out.write(f'\n[tls]\ncert_file = "{certs["server"]}"\nkey_file = "{certs["server-key"]}"\n')
    running.start()
    yield running, certs
    running.stop()


def tls_endpoint(
    proxy: Proxy, host: str = "127.0.0.1", ca_bundle: Path | None = None
) -> XksEndpoint:
    return XksEndpoint(
        f"https://{host}:{proxy.port}",
        "/alice/kms/xks/v1",
        "eu-west-1",
        *ALICE,
        ca_bundle=None if ca_bundle is None else str(ca_bundle),
    )


def test_tls_with_the_ca_bundle_works(tls_proxy: tuple[FileProxy, dict[str, Path]]) -> None:
    proxy, certs = tls_proxy
    with XksClient(tls_endpoint(proxy, ca_bundle=certs["ca"]), timeout=2.0) as secure:
        assert secure.health(HEALTH).statuses == ("ACTIVE",)
        wrapped = secure.encrypt("k1", PLAINTEXT, AAD, ENCRYPT)
        assert secure.decrypt("k1", wrapped, AAD, DECRYPT) == PLAINTEXT


def test_tls_without_the_ca_or_for_another_name_fails(
    tls_proxy: tuple[FileProxy, dict[str, Path]],
) -> None:
    proxy, certs = tls_proxy
    for ep in (
        tls_endpoint(proxy),  # the system's CAs do not know the test CA
        tls_endpoint(proxy, ca_bundle=certs["client"]),  # not the CA that issued it
        tls_endpoint(proxy, host="localhost", ca_bundle=certs["ca"]),  # issued for 127.0.0.1
    ):
        with XksClient(ep, timeout=2.0) as untrusting:
            assert failure_of(untrusting.health, HEALTH) is Failure.TLS


def test_https_to_a_plain_http_server_fails_tls(proxy: Proxy, tmp_path: Path) -> None:
    ep = endpoint(proxy, uri_endpoint=f"https://127.0.0.1:{proxy.port}")
    with XksClient(ep, timeout=2.0) as confused:
        assert failure_of(confused.health, HEALTH) is Failure.TLS


def test_an_unreadable_ca_bundle_fails_at_once(proxy: Proxy, tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate")
    for path in (tmp_path / "bad.pem", tmp_path / "missing.pem"):
        ep = endpoint(proxy, uri_endpoint="https://127.0.0.1:1", ca_bundle=str(path))
        with pytest.raises(XksError) as raised:
            XksClient(ep)
        assert raised.value.failure is Failure.TLS
