"""keystores.pkcs11_token and keystores.softhsm on a real SoftHSM2, each scenario in its own
process (SoftHSM2 reads its configuration once per process) with its own token directory."""

from __future__ import annotations

from pathlib import Path

from ._softhsm import needs_softhsm, run_scenario

pytestmark = needs_softhsm

_PRELUDE = """
import os, shutil, threading
from pathlib import Path
import pkcs11
from pkcs11 import KeyType, Mechanism, Attribute
from pkcs11.mechanisms import GCMParams
from strongroom.keystores import softhsm
from strongroom.keystores.pkcs11_token import Token, TokenError, TokenUnavailable, PinIncorrect
DATA = Path({data!r})
module = softhsm.create_token(DATA, "t1", "pin-one-1")
def make_key(s):
    return s.generate_key(KeyType.AES, 256, label="k", store=True,
                          template={{Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}})
def gcm(token, data, aad=b"aad", nonce=b"\\0" * 12):
    return token.run(lambda s: token.find_key(s, "k", KeyType.AES).encrypt(
        data, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad, 128)))
def ungcm(token, data, aad=b"aad", nonce=b"\\0" * 12):
    return token.run(lambda s: token.find_key(s, "k", KeyType.AES).decrypt(
        data, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad, 128)))
"""


def _run(tmp_path: Path, body: str) -> str:
    return run_scenario(_PRELUDE, tmp_path, body)


def test_login_and_wrong_pin_and_missing_token_and_module(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """
        Token(module, "t1", "pin-one-1").check()
        print("ok")
        try:
            Token(module, "t1", "wrong").check()
        except PinIncorrect as e:
            print("pin:", e)
        try:
            Token(module, "nope", "pin-one-1").check()
        except TokenUnavailable as e:
            print("token:", e)
        try:
            Token(Path("/nonexistent/lib.so"), "t1", "x").check()
        except TokenError as e:
            print("module:", e)
        """,
    )
    assert "ok\n" in out
    assert "pin: PKCS#11 token 't1' refused the PIN" in out
    assert "token: PKCS#11 module" in out and "no token labelled 'nope'" in out
    assert "module: PKCS#11 module /nonexistent/lib.so does not exist" in out
    assert "wrong" not in out.replace("refused", "")


def test_token_taken_away_fails_closed_and_recovers_without_restart(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """
        t = Token(module, "t1", "pin-one-1")
        t.run(make_key)
        blob = gcm(t, b"secret")
        tokens = DATA / "softhsm" / "tokens"
        away = DATA / "away"
        shutil.move(tokens, away)
        tokens.mkdir()
        import time
        for attempt in range(2):
            try:
                gcm(t, b"secret")
            except TokenUnavailable as e:
                print("gone:", type(e).__name__)
        tokens.rmdir()
        shutil.move(away, tokens)
        time.sleep(0.3)  # REINITIALIZE_SECONDS
        print("back:", ungcm(t, blob))
        """,
    )
    assert out.count("gone: TokenUnavailable") == 2
    assert "back: b'secret'" in out


def test_operation_error_is_not_mistaken_for_a_missing_token(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """
        t = Token(module, "t1", "pin-one-1")
        t.run(make_key)
        blob = gcm(t, b"secret")
        try:
            ungcm(t, blob, aad=b"other")
        except TokenUnavailable:
            print("wrongly unavailable")
        except pkcs11.exceptions.PKCS11Error as e:
            print("operation error:", type(e).__name__)
        print(ungcm(t, blob))
        """,
    )
    assert "operation error:" in out and "wrongly" not in out
    assert "b'secret'" in out


def test_threads_share_the_token_through_the_lock(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """
        t = Token(module, "t1", "pin-one-1")
        t.run(make_key)
        errors = []
        def work(n):
            try:
                for i in range(100):
                    nonce = n.to_bytes(4, "big") + i.to_bytes(8, "big")
                    data = f"{n}-{i}".encode()
                    assert ungcm(t, gcm(t, data, nonce=nonce), nonce=nonce) == data
            except Exception as e:
                errors.append(repr(e))
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for th in threads: th.start()
        for th in threads: th.join()
        print("errors:", errors)
        """,
    )
    assert "errors: []" in out


def test_a_second_softhsm_configuration_in_one_process_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    out = _run(
        tmp_path,
        f"""
        Token(module, "t1", "pin-one-1").check()
        try:
            softhsm.use_data_dir(Path({str(other)!r}))
        except TokenError as e:
            print("refused:", e)
        """,
    )
    assert "refused: SoftHSM2 is already loaded in this process" in out
