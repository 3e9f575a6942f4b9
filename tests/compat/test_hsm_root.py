"""The root key in a PKCS#11 token (README "Root key in an HSM"), on real SoftHSM2 tokens:
``serve --root-key softhsm`` and ``--root-key pkcs11``, restarts, refusals that name what is
wrong, a token that goes away while the server runs, and nothing secret at rest."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from botocore.exceptions import BotoCoreError, ClientError

from conftest import (
    POSTGRES_ENV,
    REGION,
    _drop_postgres_database,
    _fresh_postgres_database,
    run_strongroom,
    start_server,
    stop_server,
)
from strongroom.keystores import softhsm

from ._byok import NO_EXPIRY, wrap
from ._support import ACCOUNT, ALL_KMS, new_principal, put_policy

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(
        not any(p.is_file() for p in softhsm.MODULE_PATHS), reason="SoftHSM2 is not installed"
    ),
]

PIN_ENV = "STRONGROOM_TEST_HSM_PIN"
PIN = "test-pin-2468"


def make_token(base: Path, label: str, pin: str = PIN) -> Path:
    """A SoftHSM2 token ``label`` under ``base`` (in a child process: SoftHSM2 reads its
    configuration once per process); returns its softhsm2.conf. The PIN goes by the
    environment, never the command line."""
    code = (
        "import os, sys; from pathlib import Path; from strongroom.keystores import softhsm; "
        "softhsm.create_token(Path(sys.argv[1]), sys.argv[2], os.environ['NEW_PIN'])"
    )
    env = {**os.environ, "NEW_PIN": pin}
    env.pop(softhsm.CONF_ENV, None)
    subprocess.run([sys.executable, "-c", code, str(base), label], env=env, check=True)
    return base / "softhsm" / "softhsm2.conf"


@pytest.fixture
def hsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A token 'hsm-root' under tmp_path/hsm and the options of a server that uses it, with
    the PIN in PIN_ENV and SOFTHSM2_CONF in the environment the servers inherit."""
    conf = make_token(tmp_path / "hsm", "hsm-root")
    monkeypatch.setenv(softhsm.CONF_ENV, str(conf))
    monkeypatch.setenv(PIN_ENV, PIN)
    yield [
        "--root-key",
        "pkcs11",
        "--pkcs11-module",
        str(softhsm.module_path()),
        "--pkcs11-token-label",
        "hsm-root",
        "--pkcs11-pin-env",
        PIN_ENV,
    ]


def _refused(args: list[str], *expected: str) -> str:
    result = run_strongroom(args, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("strongroom: "), result.stderr
    for text in expected:
        assert text in line, line
    assert PIN not in result.stderr
    return line


def _serve(data: Path, *extra: str) -> list[str]:
    return ["serve", "--port", "0", "--data-dir", str(data), *extra]


def _wrapped_values(db: Path) -> list[bytes]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT wrapped FROM key_materials").fetchall()
        rows += conn.execute("SELECT wrapped_secret FROM access_keys").fetchall()
    return [bytes(r[0]) for r in rows]


def _use(kms: Any, n: int = 3) -> list[tuple[str, bytes, bytes]]:
    """``n`` new keys, each with a ciphertext: (key id, plaintext, ciphertext)."""
    made = []
    for i in range(n):
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        plain = f"plaintext {i} {os.urandom(4).hex()}".encode()
        blob = kms.encrypt(KeyId=key_id, Plaintext=plain)["CiphertextBlob"]
        made.append((key_id, plain, blob))
    return made


def _all_decrypt(kms: Any, made: list[tuple[str, bytes, bytes]]) -> None:
    for _, plain, blob in made:
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plain


# -- serve --root-key softhsm ---------------------------------------------------------------


def test_softhsm_root_serves_restarts_and_keeps_no_root_key_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data, None, "--root-key", "softhsm", "--workers", "2")
    try:
        kms = server.client()
        made = _use(kms)
        _all_decrypt(kms, made)
    finally:
        stop_server(server)
    assert not (data / "root.key").exists()
    pin_file = data / "softhsm" / "root.pin"
    assert pin_file.stat().st_mode & 0o777 == 0o600
    assert (data / "softhsm" / "softhsm2.conf").is_file()
    wrapped = _wrapped_values(data / "strongroom.db")
    assert wrapped and all(w[0] == 2 for w in wrapped), "every secret is wrapped by the token"
    assert len({w[1:9] for w in wrapped}) == 1  # under one root key

    server = start_server(data, None, "--root-key", "softhsm")
    try:
        kms = server.client()
        _all_decrypt(kms, made)
        _all_decrypt(kms, _use(kms, 1))
    finally:
        stop_server(server)
    # Plaintexts and the PIN are nowhere in the database.
    stored = b"".join(p.read_bytes() for p in data.glob("strongroom.db*"))
    for _, plain, _ in made:
        assert plain not in stored
    assert pin_file.read_text().strip().encode() not in stored


def test_softhsm_root_refuses_a_file_root_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    stop_server(start_server(data))
    assert (data / "root.key").exists()
    _refused(_serve(data, "--root-key", "softhsm"), "is in use", "strongroom admin root-key")
    assert not (data / "softhsm").exists()


# -- serve --root-key pkcs11 ----------------------------------------------------------------


def test_pkcs11_root_with_the_pin_in_an_environment_variable(
    tmp_path: Path, hsm: list[str]
) -> None:
    data = tmp_path / "data"
    server = start_server(data, None, *hsm, "--workers", "2")
    try:
        kms = server.client()
        made = _use(kms)
    finally:
        stop_server(server)
    assert not (data / "root.key").exists() and not (data / "softhsm").exists()
    server = start_server(data, None, *hsm)
    try:
        _all_decrypt(server.client(), made)
    finally:
        stop_server(server)


def test_pkcs11_root_settings_from_the_environment_and_a_pin_file(
    tmp_path: Path, hsm: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    monkeypatch.setenv("STRONGROOM_ROOT_KEY", "pkcs11")
    monkeypatch.setenv("STRONGROOM_PKCS11_MODULE", str(softhsm.module_path()))
    monkeypatch.setenv("STRONGROOM_PKCS11_TOKEN_LABEL", "hsm-root")
    monkeypatch.setenv("STRONGROOM_PKCS11_PIN_FILE", str(pin_file))
    monkeypatch.delenv(PIN_ENV)
    server = start_server(data)
    try:
        _all_decrypt(server.client(), _use(server.client(), 1))
    finally:
        stop_server(server)
    pin_file.chmod(0o644)
    _refused(_serve(data), f"PIN file {pin_file} must not be readable by others")


def test_pkcs11_start_refusals_name_what_is_wrong(tmp_path: Path, hsm: list[str]) -> None:
    data = tmp_path / "data"
    module = str(softhsm.module_path())

    def with_option(name: str, value: str) -> list[str]:
        args = list(hsm)
        args[args.index(name) + 1] = value
        return args

    os.environ[PIN_ENV] = "wrong-pin"
    try:
        _refused(
            _serve(data, *hsm),
            "PKCS#11 token 'hsm-root' refused the PIN",
            f"from environment variable {PIN_ENV}",
        )
    finally:
        os.environ[PIN_ENV] = PIN
    _refused(
        _serve(data, *with_option("--pkcs11-token-label", "absent")),
        f"PKCS#11 module {module} has no token labelled 'absent'",
    )
    _refused(
        _serve(data, *with_option("--pkcs11-module", "/nonexistent/libhsm.so")),
        "PKCS#11 module /nonexistent/libhsm.so does not exist",
    )
    _refused(
        _serve(data, *with_option("--pkcs11-pin-env", "NO_SUCH_PIN_VARIABLE")),
        "environment variable NO_SUCH_PIN_VARIABLE (setting pkcs11_pin_env) is not set",
    )
    _refused(
        _serve(data, "--root-key", "pkcs11", "--pkcs11-module", module),
        "setting 'pkcs11_token_label' is not given",
    )
    assert not data.exists(), "a refused start leaves nothing behind"

    # A database in use whose key has gone from the token: refused, no key made.
    stop_server(start_server(data, None, *hsm))
    code = (
        "import os; from pathlib import Path; "
        "from strongroom.keystores.pkcs11_root import Pkcs11RootKey; "
        "from strongroom.keystores.pkcs11_token import Token; "
        f"Pkcs11RootKey(Token(Path({module!r}), 'hsm-root', os.environ[{PIN_ENV!r}]), "
        "'strongroom-root').destroy()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    _refused(
        _serve(data, *hsm),
        "PKCS#11 token 'hsm-root' has no AES key labelled 'strongroom-root'",
    )
    _refused(_serve(data, *hsm), "has no AES key labelled")  # and made none
    # The PIN never as a setting.
    config = tmp_path / "config.toml"
    config.write_text(f'pkcs11_pin = "{PIN}"\n')
    result = run_strongroom(["--config", str(config), *_serve(data, *hsm)], check=False)
    assert result.returncode == 2 and "a PIN is never a setting" in result.stderr


# -- a token that goes away -----------------------------------------------------------------


def test_a_token_taken_away_fails_closed_and_comes_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data, None, "--root-key", "softhsm")
    tokens, away = data / "softhsm" / "tokens", tmp_path / "tokens-away"
    try:
        kms = server.client()
        made = _use(kms, 1)
        before = len(kms.list_keys()["Keys"])
        shutil.move(tokens, away)
        try:
            for _ in range(3):  # a new key needs a wrap: refused, nothing half-made
                started = time.monotonic()
                with pytest.raises(ClientError) as raised:
                    kms.create_key()
                assert raised.value.response["Error"]["Code"] == "KMSInternalException"
                assert time.monotonic() - started < 10, "no hang"
            assert len(kms.list_keys()["Keys"]) == before
            assert server.process.poll() is None, "no crash"
        finally:
            shutil.move(away, tokens)
        time.sleep(0.5)
        _all_decrypt(kms, made)
        _all_decrypt(kms, _use(kms, 2))  # recovered without a restart
        assert len(kms.list_keys()["Keys"]) == before + 2
    finally:
        stop_server(server)
    log = server.log_path.read_text()
    assert "is not available" in log


# -- migrate and rotate while serving -------------------------------------------------------


class Load:
    """A client that encrypts and decrypts (and now and then creates a key) against the
    server without pause until stopped; every failure is kept."""

    def __init__(self, kms: Any, made: list[tuple[str, bytes, bytes]]) -> None:
        self.kms, self.made = kms, list(made)
        self.failures: list[str] = []
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            key_id, plain, blob = self.made[i % len(self.made)]
            try:
                if i % 25 == 0:
                    self.made += _use(self.kms, 1)
                assert self.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plain
                fresh = self.kms.encrypt(KeyId=key_id, Plaintext=plain)["CiphertextBlob"]
                assert self.kms.decrypt(CiphertextBlob=fresh)["Plaintext"] == plain
                self.calls += 1
            except (ClientError, BotoCoreError, AssertionError) as exc:  # each is a finding
                self.failures.append(repr(exc))


def _root_key_cli(data: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "strongroom.cli.main", "admin", "root-key", *args]
    return subprocess.Popen(
        [*cmd, "--data-dir", str(data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _killed_while_rewrapping(data: Path, *args: str) -> None:
    """Run ``root-key args`` one row per batch and kill it (SIGKILL) right after its first
    progress line: a crash in the middle of the re-wrap."""
    cli = _root_key_cli(data, *args, "--grace", "1", "--batch-size", "1")
    assert cli.stderr is not None
    for line in cli.stderr:
        if "re-wrapped" in line:
            cli.kill()
            break
    cli.wait(timeout=60)
    assert cli.returncode == -9, "the command finished before it was killed"


def _finish(data: Path, *args: str) -> dict[str, Any]:
    cli = _root_key_cli(data, *args, "--grace", "1")
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    assert "resuming" in err, err
    assert "re-wrapped" in err
    return dict(json.loads(out))


def _formats(db: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for value in _wrapped_values(db):
        counts[value[0]] = counts.get(value[0], 0) + 1
    return counts


def _materials_in_token(data: Path) -> list[bytes]:
    """Every key material version of the database, unwrapped by the data directory's
    SoftHSM2 token (in a child process), to look for in the files."""
    code = textwrap.dedent(
        """
        import json, sqlite3, sys
        from pathlib import Path
        from strongroom.keystores import softhsm
        from strongroom.keystores.pkcs11_root import Pkcs11RootKey
        from strongroom.keystores.pkcs11_token import Token
        from strongroom.crypto.wrap import material_aad
        data = Path(sys.argv[1])
        module = softhsm.use_data_dir(data)
        pin = (data / "softhsm" / "root.pin").read_text().strip()
        token = Token(module, "strongroom-root", pin)
        db = sqlite3.connect(data / "strongroom.db")
        active = "SELECT key_label FROM root_keys WHERE state = 'active'"
        (label,) = db.execute(active).fetchone()
        key = Pkcs11RootKey(token, label)
        rows = db.execute("SELECT key_arn, version, wrapped FROM key_materials").fetchall()
        print(json.dumps([key.unwrap(w, material_aad(a, v)).hex() for a, v, w in rows]))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != softhsm.CONF_ENV}
    done = subprocess.run(
        [sys.executable, "-c", code, str(data)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    return [bytes.fromhex(m) for m in json.loads(done.stdout)]


def test_migrate_from_the_file_root_while_serving_resumes_after_a_crash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data, None, "--workers", "2")
    try:
        kms = server.client()
        made = _use(kms, 60)
        old_root = (data / "root.key").read_bytes()
        with Load(kms, made) as load:
            _killed_while_rewrapping(data, "migrate", "--to", "softhsm")
            formats = _formats(data / "strongroom.db")
            assert formats.get(1) and formats.get(2), f"killed mid-way: {formats}"
            assert (data / "root.key").exists()
            _all_decrypt(kms, made)  # half migrated: everything still works
            result = _finish(data, "migrate", "--to", "softhsm")
            time.sleep(1)  # servers notice the file key retired
        assert load.failures == [], load.failures[:5]
        assert load.calls > 20
        assert result["Outcome"] == "migrated" and result["Provider"] == "softhsm"
        assert not (data / "root.key").exists()
        assert _formats(data / "strongroom.db").keys() == {2}
        _all_decrypt(kms, load.made)
        _all_decrypt(kms, _use(kms, 2))
    finally:
        stop_server(server)
    # Restarted as it was configured (file) it follows the registry onto the token.
    server = start_server(data, None)
    try:
        _all_decrypt(server.client(), made)
    finally:
        stop_server(server)
    again = _root_key_cli(data, "migrate", "--to", "softhsm")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0 and "migrated before" in out, err
    # Each run left its intent, and the two that finished their event; the one killed
    # mid-way left its intent alone, which audit unmatched lists: it changed part of the
    # database (cli/admin_trail.py).
    events = run_strongroom(
        ["audit", "events", "--intents", "--event-name", "MigrateRootKey", "--data-dir", str(data)]
    )
    records = [json.loads(line) for line in events.stdout.splitlines()]
    assert [r.get("recordType", "event") for r in records].count("Intent") == 3
    assert [r["responseElements"]["outcome"] for r in records if "eventID" in r] == [
        "migrated",
        "the database was migrated before",
    ]
    unmatched = run_strongroom(
        ["audit", "unmatched", "--older-than", "0", "--data-dir", str(data)], check=False
    )
    assert unmatched.returncode == 1 and " MigrateRootKey " in unmatched.stdout, unmatched.stdout
    assert unmatched.stdout.count("MigrateRootKey") == 1, unmatched.stdout
    # Nothing secret at rest in the database: no material, not the old root key.
    stored = b"".join(p.read_bytes() for p in data.glob("strongroom.db*"))
    materials = _materials_in_token(data)
    assert len(materials) >= 60
    for material in materials:
        assert material not in stored
    assert old_root not in stored
    for _, plain, _ in made:
        assert plain not in stored


def test_rotate_while_serving_resumes_after_a_crash_and_destroys_the_old_key(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = start_server(data, None, "--root-key", "softhsm", "--workers", "2")
    try:
        kms = server.client()
        made = _use(kms, 60)
        signing_key = _audit_signing_key(data)
        before = {w[1:9] for w in _wrapped_values(data / "strongroom.db")}
        with Load(kms, made) as load:
            _killed_while_rewrapping(data, "rotate")
            ids = {w[1:9] for w in _wrapped_values(data / "strongroom.db")}
            assert len(ids) == 2, "killed mid-way: values under both keys"
            result = _finish(data, "rotate")
            time.sleep(1)
        assert load.failures == [], load.failures[:5]
        assert result["Outcome"] == "rotated"
        after = {w[1:9] for w in _wrapped_values(data / "strongroom.db")}
        assert len(after) == 1 and after != before
        _all_decrypt(kms, load.made)
    finally:
        stop_server(server)
    status = _root_key_cli(data, "status")
    out, _ = status.communicate(timeout=60)
    states = {e["KeyLabel"]: e["State"] for e in json.loads(out)}
    assert states["strongroom-root"] == "retired"
    assert list(states.values()).count("active") == 1
    # The old key is gone from the token: nothing can unwrap under it again.
    code = (
        "import sys; from pathlib import Path; from strongroom.keystores import softhsm; "
        "from strongroom.keystores.pkcs11_root import Pkcs11RootKey, KeyNotFound; "
        "from strongroom.keystores.pkcs11_token import Token; d = Path(sys.argv[1]); "
        "t = Token(softhsm.use_data_dir(d), 'strongroom-root', "
        "(d / 'softhsm' / 'root.pin').read_text().strip())\n"
        "try:\n    Pkcs11RootKey(t, 'strongroom-root'); print('still there')\n"
        "except KeyNotFound:\n    print('destroyed')"
    )
    env = {k: v for k, v in os.environ.items() if k != softhsm.CONF_ENV}
    done = subprocess.run(
        [sys.executable, "-c", code, str(data)], capture_output=True, text=True, env=env
    )
    assert done.stdout.strip() == "destroyed", done.stderr
    server = start_server(data, None, "--root-key", "softhsm")
    try:
        _all_decrypt(server.client(), made)
    finally:
        stop_server(server)
    # The audit signing key was wrapped again under the new key while serving: the same
    # key signs after the old root key was destroyed, and the trail verifies.
    assert _audit_signing_key(data) == signing_key
    verify = run_strongroom(["audit", "verify", "--data-dir", str(data)], check=False)
    assert verify.returncode == 0, verify.stdout


def _audit_signing_key(data: Path) -> str:
    """The fingerprint of the audit signing key in ``data``."""
    return str(json.loads((data / "audit" / "signing-key.json").read_text())["fingerprint"])


def test_migrate_to_pkcs11_rewraps_every_kind_of_secret(tmp_path: Path, hsm: list[str]) -> None:
    """Key material, an access key's secret, a role session's secret and an import token's
    private key: each still works after the move onto the token (the nodes were given the
    token's PIN source before, as the README says)."""
    data = tmp_path / "data"
    pin_source = ["--pkcs11-pin-env", PIN_ENV]
    server = start_server(data, None, *pin_source)
    try:
        kms = server.client()
        made = _use(kms, 3)
        user = new_principal(server, "u", policy=ALL_KMS)
        role = "worker"
        server.admin("create-role", role)
        put_policy(server, "put-role-policy", role, ALL_KMS)
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/admin"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        put_policy(server, "update-assume-role-policy", role, trust)
        issued = json.loads(
            server.admin(
                "assume-role",
                "--role-arn",
                f"arn:aws:iam::{ACCOUNT}:role/{role}",
                "--session-name",
                "worker-session",
            ).stdout
        )["Credentials"]
        external = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
        params = kms.get_parameters_for_import(
            KeyId=external, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
        )
        before = _all_formats(data / "strongroom.db")
        assert set(before) == {"material", "access_key", "session", "import_token"}
        assert all(f == {1} for f in before.values())

        cli = _root_key_cli(
            data,
            "migrate",
            "--to",
            "pkcs11",
            "--grace",
            "1",
            *hsm[2:],  # --pkcs11-module, --pkcs11-token-label, --pkcs11-pin-env
        )
        out, err = cli.communicate(timeout=120)
        assert cli.returncode == 0, err
        assert json.loads(out)["Provider"] == "pkcs11"
        assert PIN not in out + err
        assert "re-wrapped 1/1 role session secrets" in err
        assert "re-wrapped 1/1 import token private keys" in err
        after = _all_formats(data / "strongroom.db")
        assert all(f == {2} for f in after.values()), after
        assert not (data / "root.key").exists()

        _all_decrypt(kms, made)
        user["client"].encrypt(KeyId=made[0][0], Plaintext=b"by the user")
        session = boto3.client(
            "kms",
            endpoint_url=server.endpoint,
            region_name=REGION,
            aws_access_key_id=issued["AccessKeyId"],
            aws_secret_access_key=issued["SecretAccessKey"],
            aws_session_token=issued["SessionToken"],
        )
        session.encrypt(KeyId=made[0][0], Plaintext=b"by the session")
        material = os.urandom(32)
        kms.import_key_material(
            KeyId=external,
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", material),
            **NO_EXPIRY,
        )
        blob = kms.encrypt(KeyId=external, Plaintext=b"imported")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported"
    finally:
        stop_server(server)
    server = start_server(data, None, *hsm)
    try:
        _all_decrypt(server.client(), made)
    finally:
        stop_server(server)


def _all_formats(db: Path) -> dict[str, set[int]]:
    """The format bytes of the wrapped values of each kind of row."""
    columns = {
        "material": "SELECT wrapped FROM key_materials",
        "access_key": "SELECT wrapped_secret FROM access_keys",
        "session": "SELECT wrapped_secret FROM role_sessions",
        "import_token": "SELECT wrapped_private_key FROM import_tokens",
    }
    found: dict[str, set[int]] = {}
    with sqlite3.connect(db) as conn:
        for kind, query in columns.items():
            values = {bytes(r[0])[0] for r in conn.execute(query)}
            if values:
                found[kind] = values
    return found


def test_a_token_gone_before_anything_is_cached_fails_closed(tmp_path: Path) -> None:
    """After a restart nothing is unwrapped yet: with the token gone a Decrypt (the caller's
    secret and the key's material both need the token) is KMSInternalException, and
    nothing in the reply or the log is plaintext."""
    data = tmp_path / "data"
    server = start_server(data, None, "--root-key", "softhsm")
    try:
        (_, plain, blob) = _use(server.client(), 1)[0]
    finally:
        stop_server(server)
    server = start_server(data, None, "--root-key", "softhsm")
    tokens, away = data / "softhsm" / "tokens", tmp_path / "tokens-away"
    try:
        kms = server.client()
        shutil.move(tokens, away)
        try:
            for _ in range(2):
                with pytest.raises(ClientError) as raised:
                    kms.decrypt(CiphertextBlob=blob)
                assert raised.value.response["Error"]["Code"] == "KMSInternalException"
                assert plain not in str(raised.value.response).encode()
            assert server.process.poll() is None
        finally:
            shutil.move(away, tokens)
        time.sleep(0.5)
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plain
    finally:
        stop_server(server)
    assert plain not in server.log_path.read_bytes()


def test_migrate_and_rotate_on_postgresql(tmp_path: Path) -> None:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    url, name = _fresh_postgres_database(base)
    data = tmp_path / "data"
    try:
        server = start_server(data, url, "--workers", "2")
        try:
            kms = server.client()
            made = _use(kms, 12)
            with Load(kms, made) as load:
                for args in (["migrate", "--to", "softhsm"], ["rotate"]):
                    cli = _root_key_cli(
                        data, *args, "--grace", "1", "--batch-size", "5", "--database-url", url
                    )
                    out, err = cli.communicate(timeout=120)
                    assert cli.returncode == 0, err
                    assert "re-wrapped" in err and "key material versions" in err
                    assert json.loads(out)["Outcome"] in ("migrated", "rotated")
            assert load.failures == [], load.failures[:5]
            _all_decrypt(kms, load.made)
        finally:
            stop_server(server)
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                values = [
                    bytes(r[0]) for r in conn.execute(sa.text("SELECT wrapped FROM key_materials"))
                ]
                states = dict(conn.execute(sa.text("SELECT key_label, state FROM root_keys")).all())
        finally:
            engine.dispose()
        assert values and {v[0] for v in values} == {2} and len({v[1:9] for v in values}) == 1
        assert sorted(states.values()) == ["active", "retired", "retired"]
        assert not (data / "root.key").exists()
    finally:
        _drop_postgres_database(base, name)
