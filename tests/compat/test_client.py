"""``strongroom encrypt``/``decrypt`` and ``strongroom.client`` against a real server: round
trips through files and stdin/stdout, interoperation with the AWS Encryption SDK library and
its command line (``aws-encryption-cli``) both ways, clear failures that leave no output,
the GenerateDataKey calls the audit trail shows with and without data key caching, and a
job against a server that throttles."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aws_encryption_sdk import CommitmentPolicy, EncryptionSDKClient

from conftest import REGION, Server, run_in_process, run_strongroom, start_server, stop_server
from strongroom.client import (
    CacheSettings,
    Client,
    ContextMismatchError,
    KmsCallError,
    MalformedMessageError,
    NoUsableKeyError,
)

from ._support import ACCOUNT, audit_events, unique_alias
from .test_encryption_sdk import sdk_session, strict

pytestmark = pytest.mark.compat

ESDK_CLI = Path(__file__).resolve().parents[1] / "esdk_cli" / "venv" / "bin" / "aws-encryption-cli"
needs_esdk_cli = pytest.mark.skipif(
    not ESDK_CLI.is_file(),
    reason="aws-encryption-cli is missing: python3 -m venv tests/esdk_cli/venv && "
    "tests/esdk_cli/venv/bin/pip install -r tests/esdk_cli/requirements.txt",
)
CONTEXT = {"purpose": "client", "tenant": "t-1"}
CONTEXT_ARGS = [arg for k, v in CONTEXT.items() for arg in ("--context", f"{k}={v}")]


def aws_env(server: Server) -> dict[str, str]:
    """The standard AWS environment pointing at ``server`` (what ``strongroom env`` and a
    profile would give), with no retries unless a test asks."""
    return {
        "AWS_ENDPOINT_URL_KMS": server.endpoint,
        "AWS_ACCESS_KEY_ID": server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": server.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One SQLite server for the module: the client is a pure client, the storage backend is
    the server's business (every other compat module runs on both), so not twice here."""
    srv = start_server(tmp_path_factory.mktemp("client") / "data")
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def kms(server: Server) -> Any:
    return server.client()


@pytest.fixture
def key(kms: Any) -> dict[str, Any]:
    return kms.create_key(Description="client test key")["KeyMetadata"]  # type: ignore[no-any-return]


@pytest.fixture
def env(server: Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The AWS environment of ``server``, set in this process too (for in-process runs)."""
    values = aws_env(server)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, **values}


def strongroom(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``strongroom ARGS`` in this process (the environment is the test's)."""
    return run_in_process(list(args), check=check)


def piped(env: dict[str, str], args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    """The real ``strongroom`` executable with ``data`` on stdin, stdout captured as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", *args],
        input=data,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def aliased(kms: Any, key: dict[str, Any]) -> dict[str, str]:
    """A fresh key's ARN and an alias of it."""
    alias = unique_alias("client")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return {"arn": key["Arn"], "alias": alias, "id": key["KeyId"]}


def test_encrypt_and_decrypt_have_help() -> None:
    for command in ("encrypt", "decrypt"):
        out = strongroom(command, "--help").stdout
        for option in ("--key-id", "--context", "--input", "--output", "--cache-max-age"):
            assert option in out, (command, option)
        assert "AWS_ENDPOINT_URL_KMS" in out


def test_file_round_trip_under_an_alias(
    env: dict[str, str], aliased: dict[str, str], tmp_path: Path
) -> None:
    plain, message, back = tmp_path / "plain", tmp_path / "plain.enc", tmp_path / "back"
    plain.write_bytes(os.urandom(100_000))
    strongroom("encrypt", "--key-id", aliased["alias"], *CONTEXT_ARGS, "--input", str(plain),
               "--output", str(message), "--retry-mode", "adaptive",
               "--max-attempts", "3")  # fmt: skip
    assert message.read_bytes()[:1] == b"\x02"  # message format version 2 (key commitment)
    strongroom("decrypt", *CONTEXT_ARGS, "--input", str(message), "--output", str(back))
    assert back.read_bytes() == plain.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back", "plain", "plain.enc"]


def test_stdin_to_stdout_round_trip_under_a_key_arn(
    env: dict[str, str], aliased: dict[str, str]
) -> None:
    data = os.urandom(70_000)
    encrypted = piped(env, ["encrypt", "--key-id", aliased["arn"], *CONTEXT_ARGS], data)
    assert encrypted.returncode == 0, encrypted.stderr
    assert encrypted.stderr == b""  # no progress bar, no report: stderr is not a terminal
    decrypted = piped(env, ["decrypt", "--key-id", aliased["alias"]], encrypted.stdout)
    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout == data


def test_progress_bar_on_a_terminal(
    env: dict[str, str], aliased: dict[str, str], tmp_path: Path
) -> None:
    """stderr a terminal (a pseudo-terminal of 100 columns) and the input a file: a bar
    with the total; the other tests show none when stderr is not a terminal."""
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(3 * 1024 * 1024))
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    with subprocess.Popen(
        [sys.executable, "-m", "strongroom.cli.main", "encrypt", "--key-id", aliased["arn"],
         "--input", str(plain), "--output", str(tmp_path / "m")],
        stderr=terminal, stdout=subprocess.DEVNULL, env=env,
    ) as process:  # fmt: skip
        os.close(terminal)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the process has closed the terminal
            while chunk := os.read(controller, 4096):
                shown += chunk
        assert process.wait(timeout=120) == 0, shown
    os.close(controller)
    assert b"/3.00M [" in shown, shown  # tqdm: done/total in binary megabytes
    assert b"100%" in shown or b"3.00M/3.00M" in shown, shown


def test_multi_megabyte_file_round_trip(
    env: dict[str, str], aliased: dict[str, str], tmp_path: Path
) -> None:
    """Streamed in 1 MiB steps (constant memory; checked here by size and digest only)."""
    size = 6 * 1024 * 1024 + 5
    plain = tmp_path / "big"
    with plain.open("wb") as f:
        for _ in range(6):
            f.write(os.urandom(1024 * 1024))
        f.write(b"12345")
    strongroom("encrypt", "--key-id", aliased["id"], "--input", str(plain),
               "--output", str(tmp_path / "big.enc"))  # fmt: skip
    assert (tmp_path / "big.enc").stat().st_size > size
    strongroom("decrypt", "--input", str(tmp_path / "big.enc"), "--output", str(tmp_path / "out"))
    assert (tmp_path / "out").stat().st_size == size
    digest = hashlib.sha256(plain.read_bytes()).digest()
    assert hashlib.sha256((tmp_path / "out").read_bytes()).digest() == digest


# -- interoperation with the AWS Encryption SDK -------------------------------------------


@pytest.fixture
def sdk(server: Server, tmp_path: Path) -> tuple[EncryptionSDKClient, Any]:
    """The SDK library and a botocore session on the server."""
    session = sdk_session(tmp_path, server.endpoint, server.access_key_id, server.secret_access_key)
    return EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    ), session


def test_the_sdk_library_decrypts_what_strongroom_encrypts(
    env: dict[str, str], aliased: dict[str, str], sdk: tuple[Any, Any], tmp_path: Path
) -> None:
    client, session = sdk
    plain, message = tmp_path / "plain", tmp_path / "plain.enc"
    plain.write_bytes(b"from strongroom" * 1000)
    strongroom("encrypt", "--key-id", aliased["alias"], *CONTEXT_ARGS,
               "--input", str(plain), "--output", str(message))  # fmt: skip
    plaintext, header = client.decrypt(
        source=message.read_bytes(), key_provider=strict(session, aliased["arn"])
    )
    assert plaintext == plain.read_bytes()
    assert header.encryption_context.items() >= CONTEXT.items()


def test_strongroom_decrypts_what_the_sdk_library_encrypts(
    env: dict[str, str], aliased: dict[str, str], sdk: tuple[Any, Any], tmp_path: Path
) -> None:
    client, session = sdk
    message, _ = client.encrypt(
        source=b"from the sdk" * 1000,
        key_provider=strict(session, aliased["arn"]),
        encryption_context=CONTEXT,
    )
    (tmp_path / "m").write_bytes(message)
    strongroom("decrypt", *CONTEXT_ARGS, "--key-id", aliased["arn"],
               "--input", str(tmp_path / "m"), "--output", str(tmp_path / "out"))  # fmt: skip
    assert (tmp_path / "out").read_bytes() == b"from the sdk" * 1000


def esdk_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ESDK_CLI), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@needs_esdk_cli
def test_the_encryption_sdk_cli_decrypts_what_strongroom_encrypts(
    env: dict[str, str], aliased: dict[str, str], tmp_path: Path
) -> None:
    data = os.urandom(50_000)
    (tmp_path / "plain").write_bytes(data)
    strongroom("encrypt", "--key-id", aliased["alias"], *CONTEXT_ARGS,
               "--input", str(tmp_path / "plain"), "--output", str(tmp_path / "m"))  # fmt: skip
    done = esdk_cli(
        env, "--decrypt", "--input", str(tmp_path / "m"), "--output", str(tmp_path / "out"),
        "--wrapping-keys", f"key={aliased['arn']}", "--encryption-context",
        *(f"{k}={v}" for k, v in CONTEXT.items()), "-S",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out").read_bytes() == data


@needs_esdk_cli
def test_strongroom_decrypts_what_the_encryption_sdk_cli_encrypts(
    env: dict[str, str], aliased: dict[str, str], tmp_path: Path
) -> None:
    data = os.urandom(50_000)
    (tmp_path / "plain").write_bytes(data)
    done = esdk_cli(
        env, "--encrypt", "--input", str(tmp_path / "plain"), "--output", str(tmp_path / "m"),
        "--wrapping-keys", f"key={aliased['arn']}", "--encryption-context",
        *(f"{k}={v}" for k, v in CONTEXT.items()), "-S",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    strongroom("decrypt", *CONTEXT_ARGS, "--input", str(tmp_path / "m"),
               "--output", str(tmp_path / "out"))  # fmt: skip
    assert (tmp_path / "out").read_bytes() == data


# -- failures: clear, non-zero, no output left behind -------------------------------------


def _encrypted(aliased: dict[str, str], tmp_path: Path) -> Path:
    message = tmp_path / "m"
    (tmp_path / "plain").write_bytes(b"secret")
    strongroom("encrypt", "--key-id", aliased["arn"], *CONTEXT_ARGS,
               "--input", str(tmp_path / "plain"), "--output", str(message))  # fmt: skip
    return message


def _fails(tmp_path: Path, *args: str) -> str:
    """Run ``args`` (writing --output tmp_path/out), assert exit 1 and no output file of any
    name, and return stderr."""
    before = set(tmp_path.iterdir())
    done = strongroom(*args, "--output", str(tmp_path / "out"), check=False)
    assert done.returncode == 1, done
    assert set(tmp_path.iterdir()) == before
    assert done.stdout == ""
    return done.stderr


def test_decrypt_with_wrong_context_fails(
    env: dict[str, str], aliased: dict[str, str], tmp_path: Path
) -> None:
    message = _encrypted(aliased, tmp_path)
    err = _fails(tmp_path, "decrypt", "--context", "tenant=t-2", "--input", str(message))
    assert err == (
        "strongroom decrypt: the message's encryption context does not contain tenant=t-2\n"
    )
    err = _fails(tmp_path, "decrypt", "--context", "missing=x", "--input", str(message))
    assert "does not contain missing=x" in err


def test_decrypt_restricted_to_another_key_fails(
    env: dict[str, str], aliased: dict[str, str], kms: Any, tmp_path: Path
) -> None:
    message = _encrypted(aliased, tmp_path)
    other = kms.create_key()["KeyMetadata"]["Arn"]
    err = _fails(tmp_path, "decrypt", "--key-id", other, "--input", str(message))
    assert err == (
        "strongroom decrypt: no encrypted data key of the message is under a KMS key this "
        f"client may use (only {other})\n"
    )


def test_encrypt_under_a_missing_key_fails(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"secret")
    err = _fails(tmp_path, "encrypt", "--key-id", "alias/no-such-alias",
                 "--input", str(tmp_path / "plain"))  # fmt: skip
    assert err == (
        "strongroom encrypt: GenerateDataKey failed: NotFoundException: Alias "
        f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/no-such-alias is not found.\n"
    )


def test_decrypt_with_a_disabled_key_fails_with_its_kms_error(
    env: dict[str, str], aliased: dict[str, str], kms: Any, tmp_path: Path
) -> None:
    message = _encrypted(aliased, tmp_path)
    kms.disable_key(KeyId=aliased["id"])
    err = _fails(tmp_path, "decrypt", "--input", str(message))
    assert err.startswith("strongroom decrypt: Decrypt failed: DisabledException: "), err


def test_a_tampered_or_foreign_input_does_not_decrypt(
    env: dict[str, str], aliased: dict[str, str], tmp_path: Path
) -> None:
    message = _encrypted(aliased, tmp_path)
    tampered = bytearray(message.read_bytes())
    tampered[-200] ^= 1
    message.write_bytes(bytes(tampered))
    err = _fails(tmp_path, "decrypt", "--input", str(message))
    assert err.startswith("strongroom decrypt: "), err
    (tmp_path / "plain").write_bytes(b"not a message at all")
    err = _fails(tmp_path, "decrypt", "--input", str(tmp_path / "plain"))
    assert err.startswith("strongroom decrypt: not a valid AWS Encryption SDK message"), err


def test_a_malformed_context_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    for pair, why in [
        ("novalue", "expected KEY=VALUE"),
        ("aws-crypto-x=1", "reserved for the AWS Encryption SDK"),
    ]:
        done = strongroom("encrypt", "--key-id", "alias/x", "--context", pair, check=False)
        assert done.returncode == 2
        assert why in done.stderr


# -- the Python API and data key caching --------------------------------------------------


def test_python_api_round_trips_bytes_and_streams(server: Server, aliased: dict[str, str]) -> None:
    client = Client(aliased["alias"], endpoint_url=server.endpoint, region=REGION,
                    session=_session(server))  # fmt: skip
    message = client.encrypt(b"api", CONTEXT)
    assert client.decrypt(message, {"tenant": "t-1"}) == b"api"
    with pytest.raises(ContextMismatchError):
        client.decrypt(message, {"tenant": "t-2"})
    source, sink, back = io.BytesIO(os.urandom(300_000)), io.BytesIO(), io.BytesIO()
    client.encrypt_stream(source, sink, CONTEXT)
    sink.seek(0)
    assert client.decrypt_stream(sink, back).items() >= CONTEXT.items()
    assert back.getvalue() == source.getvalue()
    other = Client(endpoint_url=server.endpoint, region=REGION, session=_session(server))
    assert other.decrypt(message) == b"api"
    with pytest.raises(KmsCallError) as info:
        Client("alias/none", endpoint_url=server.endpoint, region=REGION,
               session=_session(server)).encrypt(b"x")  # fmt: skip
    assert info.value.code == "NotFoundException"
    with pytest.raises(MalformedMessageError):
        client.decrypt(b"\x02 not a message")
    with pytest.raises(NoUsableKeyError):
        Client(_new_arn(server), endpoint_url=server.endpoint, region=REGION,
               session=_session(server)).decrypt(message)  # fmt: skip


def _session(server: Server) -> Any:
    """A botocore session with the server's credentials and nothing else configured."""
    import botocore.session

    session = botocore.session.Session()
    session.set_credentials(server.access_key_id, server.secret_access_key)
    return session


def _new_arn(server: Server) -> str:
    return str(server.client().create_key()["KeyMetadata"]["Arn"])


def test_audit_trail_shows_generate_data_key_calls_with_and_without_caching(
    server: Server, kms: Any
) -> None:
    """Ten messages: ten GenerateDataKey calls without the cache; with a cache that reuses a
    data key for four messages, three (4 + 4 + 2)."""
    counts = {}
    for name, cache in [
        ("uncached", None),
        ("cached", CacheSettings(max_age=60, max_messages=4, capacity=10)),
    ]:
        arn = kms.create_key(Description=name)["KeyMetadata"]["Arn"]
        client = Client(arn, endpoint_url=server.endpoint, region=REGION, cache=cache,
                        session=_session(server))  # fmt: skip
        messages = [client.encrypt(f"m{i}".encode(), CONTEXT) for i in range(10)]
        assert [client.decrypt(m) for m in messages] == [f"m{i}".encode() for i in range(10)]
        _, events = audit_events(server, "--event-name", "GenerateDataKey", "--key", arn)
        counts[name] = len(events)
        assert client.stats.calls["GenerateDataKey"] == len(events)
    assert counts == {"uncached": 10, "cached": 3}


def test_cli_cache_options_reuse_a_data_key_within_one_run(
    env: dict[str, str], server: Server, kms: Any, tmp_path: Path
) -> None:
    """One command encrypts one message, so the cache shows in the options only: accepted,
    validated, and the message decrypts."""
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    (tmp_path / "plain").write_bytes(b"cached")
    strongroom("encrypt", "--key-id", arn, "--cache-max-age", "30", "--cache-max-messages",
               "10", "--cache-max-bytes", "1000000", "--cache-capacity", "5",
               "--input", str(tmp_path / "plain"), "--output", str(tmp_path / "m"))  # fmt: skip
    strongroom("decrypt", "--cache-max-age", "30", "--input", str(tmp_path / "m"),
               "--output", str(tmp_path / "out"))  # fmt: skip
    assert (tmp_path / "out").read_bytes() == b"cached"
    bad = strongroom("encrypt", "--key-id", arn, "--cache-max-age", "0", check=False)
    assert bad.returncode == 2
    assert "cache max age must be greater than 0" in bad.stderr


# -- the README, as written ---------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "## Client: strongroom encrypt/decrypt"


def _readme_block(index: int) -> str:
    text = README.read_text().split(HEADING, 1)[1]
    return text.split("```")[1 + 2 * index].split("\n", 1)[1]


def test_readme_client_blocks_run_as_written(server: Server, tmp_path: Path) -> None:
    """The README's shell block, then its Python block, in a directory whose
    ``strongroom-data`` is this server's, with no AWS_* variable but what ``strongroom env``
    sets (the ``aws`` and ``strongroom`` commands on PATH, as installed)."""
    (tmp_path / "strongroom-data").symlink_to(server.data_dir)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "strongroom").write_text(
        f'#!/bin/sh\nexec {sys.executable} -m strongroom.cli.main "$@"\n'
    )
    (tmp_path / "bin" / "strongroom").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        PATH=f"{tmp_path / 'bin'}:{env['PATH']}",
        CODE=_readme_block(1),
    )
    script = _readme_block(0) + f'\nexec {sys.executable} -c "$CODE"\n'
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "piped{'GenerateDataKey': 2, 'DescribeKey': 1, 'Decrypt': 2}\n"
    assert (tmp_path / "restored.tar").read_bytes() == (tmp_path / "backup.tar").read_bytes()


# -- throttling ----------------------------------------------------------------------------


@pytest.fixture
def throttled(tmp_path: Path) -> Iterator[Server]:
    """A dedicated server whose GenerateDataKey fails half the time with ThrottlingException
    (the operator's fault injection)."""
    srv = start_server(tmp_path / "throttled" / "data")
    try:
        srv.admin("fault", "set", "--error", "ThrottlingException", "--rate", "0.5",
                  "--operation", "GenerateDataKey")  # fmt: skip
        time.sleep(1.2)  # a running server applies a change within a second (issue 15 §2)
        yield srv
    finally:
        stop_server(srv)


RETRIED = re.compile(r"retried (once|(\d+) times) after throttling \(ThrottlingException: (\d+)\)")


def test_large_job_against_throttled_server(
    throttled: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in aws_env(throttled).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "15")
    key = throttled.client().create_key()["KeyMetadata"]["Arn"]
    (tmp_path / "plain").write_bytes(os.urandom(20_000))
    retries = 0

    def encrypt(i: int) -> subprocess.CompletedProcess[str]:
        return run_strongroom(["encrypt", "--key-id", key, "--input", str(tmp_path / "plain"),
                               "--output", str(tmp_path / f"m{i}")])  # fmt: skip

    # Four at a time, as processes of their own: one call's backoff (full jitter, up to 20 s
    # after five throttles in a row) overlaps the others' instead of adding to them.
    with ThreadPoolExecutor(4) as pool:
        jobs = list(pool.map(encrypt, range(12)))
    for done in jobs:
        if done.stderr:
            match = RETRIED.fullmatch(done.stderr.strip().removeprefix("strongroom encrypt: "))
            assert match, done.stderr
            retries += int(match.group(3))
    assert retries > 0  # 12 calls at a rate of 0.5: all succeed first time once in 4096
    for i in range(12):
        strongroom("decrypt", "--input", str(tmp_path / f"m{i}"), "--output", str(tmp_path / "o"))
        assert (tmp_path / "o").read_bytes() == (tmp_path / "plain").read_bytes()

    # an injected failure never reached the key: its event names no resource (no --key)
    _, events = audit_events(throttled, "--event-name", "GenerateDataKey", "--fault-injected")
    assert sum(e.get("errorCode") == "ThrottlingException" for e in events) == retries
