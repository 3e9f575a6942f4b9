"""Console sessions: the signed cookie, its idle and absolute expiry, CSRF tokens, the
wrapped session key, and the limit on failed sign-ins."""

from __future__ import annotations

import base64
import os
import stat
import string
from pathlib import Path

import pytest

from strongroom.console.app import _read_flash
from strongroom.console.sessions import (
    KEY_FILE,
    REFRESH_SECONDS,
    SIGNED_OUT_FILE,
    SessionCodec,
    SignedOut,
    SignInLimiter,
    load_session_key,
)
from strongroom.domain.errors import KeyStoreError

pytestmark = pytest.mark.unit

ARN = "arn:aws:iam::111122223333:user/alice"
T0 = 1_800_000_000.0


def codec(key: bytes = b"k" * 32) -> SessionCodec:
    return SessionCodec(key, idle=900, lifetime=8 * 3600)


def test_a_cookie_decodes_to_its_session() -> None:
    c = codec()
    session = c.new("AKIAEXAMPLE", ARN, "eu-west-1", T0)
    assert c.decode(c.encode(session), T0 + 1) == session
    assert len(session.session_id) == 32


def test_an_altered_cookie_is_refused() -> None:
    c = codec()
    value = c.encode(c.new("AKIAEXAMPLE", ARN, "us-east-1", T0))
    version, payload, mac = value.split(".")
    other = c.encode(c.new("AKIAOTHER", ARN, "us-east-1", T0)).split(".")[1]
    assert c.decode(f"{version}.{other}.{mac}", T0) is None  # another payload
    alphabet = string.ascii_letters + string.digits + "-_"
    for i in (0, len(mac) // 2, len(mac) - 1):  # another MAC, or the same one spelled otherwise
        for char in alphabet.replace(mac[i], ""):
            altered = mac[:i] + char + mac[i + 1 :]
            assert c.decode(f"{version}.{payload}.{altered}", T0) is None, altered
    assert c.decode(f"v2.{payload}.{mac}", T0) is None
    assert c.decode("garbage", T0) is None
    assert codec(b"x" * 32).decode(value, T0) is None  # another server's key


def test_a_session_expires_when_idle() -> None:
    c = codec()
    session = c.new("AKIAEXAMPLE", ARN, "us-east-1", T0)
    value = c.encode(session)
    assert c.decode(value, T0 + 900) is not None
    assert c.decode(value, T0 + 901) is None


def test_a_refreshed_session_still_ends_at_its_absolute_lifetime() -> None:
    c = codec()
    session = c.new("AKIAEXAMPLE", ARN, "us-east-1", T0)
    now = T0
    assert c.touched(session, now + REFRESH_SECONDS - 1) is None  # not due yet
    while now < T0 + 8 * 3600 - 600:
        now += 600
        touched = c.touched(session, now)
        assert touched is not None
        session = touched
        assert c.decode(c.encode(session), now) is not None
    assert c.decode(c.encode(session), T0 + 8 * 3600 + 1) is None


def test_a_session_in_use_never_idles_out_even_with_a_short_idle_time() -> None:
    c = SessionCodec(b"k" * 32, idle=4, lifetime=60)
    session = c.new("AKIAEXAMPLE", ARN, "us-east-1", T0)
    for step in range(1, 20):  # a request every 1.5 s
        now = T0 + 1.5 * step
        decoded = c.decode(c.encode(session), now)
        assert decoded is not None
        session = c.touched(decoded, now) or decoded


def test_the_csrf_token_belongs_to_its_session() -> None:
    c = codec()
    one = c.new("AKIAEXAMPLE", ARN, "us-east-1", T0)
    two = c.new("AKIAEXAMPLE", ARN, "us-east-1", T0)
    assert c.csrf_ok(one, c.csrf_token(one))
    assert not c.csrf_ok(one, c.csrf_token(two))
    assert not c.csrf_ok(one, None)
    assert not c.csrf_ok(one, "")


class _Wrapper:
    """A stand-in for the root key: reversible, and visibly not the plain secret."""

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        return b"wrapped:" + aad + b":" + secret[::-1]

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        prefix = b"wrapped:" + aad + b":"
        assert wrapped.startswith(prefix)
        return wrapped[len(prefix) :][::-1]


def test_the_session_key_is_made_once_and_kept_wrapped(tmp_path: Path) -> None:
    key = load_session_key(tmp_path, _Wrapper())
    assert len(key) == 32
    stored = (tmp_path / KEY_FILE).read_bytes()
    assert key not in stored
    assert stat.S_IMODE(os.stat(tmp_path / KEY_FILE).st_mode) == 0o600
    assert load_session_key(tmp_path, _Wrapper()) == key  # the next process reads it
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]  # no temporary file left


def test_a_session_key_that_no_longer_unwraps_is_replaced(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_bytes(b"wrapped under a root key that is gone")

    class _Other(_Wrapper):
        def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
            if not wrapped.startswith(b"wrapped:"):
                raise KeyStoreError("does not unwrap")
            return super().unwrap(wrapped, aad)

    key = load_session_key(tmp_path, _Other())
    assert len(key) == 32
    assert load_session_key(tmp_path, _Other()) == key


def test_failed_sign_ins_are_limited_per_address_and_per_key() -> None:
    now = [T0]
    limiter = SignInLimiter(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("ip:1", "key:A") == 0
        limiter.failed("ip:1", "key:A")
    assert limiter.retry_after("ip:1", "key:B") == 60  # the address is limited
    assert limiter.retry_after("ip:2", "key:A") == 60  # and so is the key
    assert limiter.retry_after("ip:2", "key:B") == 0
    now[0] += 61
    assert limiter.retry_after("ip:1", "key:A") == 0


def test_looking_up_names_holds_no_memory() -> None:
    """A blocked address that keeps trying new access key ids must not grow the table:
    before, every look-up stored an empty entry that nothing removed."""
    now = [T0]
    limiter = SignInLimiter(limit=2, window=60, clock=lambda: now[0])
    limiter.failed("ip:1", "key:A")
    limiter.failed("ip:1", "key:A")
    for i in range(5000):
        assert limiter.retry_after("ip:1", f"key:{i}") > 0
    assert set(limiter._failures) == {"ip:1", "key:A"}
    now[0] += 61
    assert limiter.retry_after("ip:1", "key:A") == 0
    assert not limiter._failures  # names whose failures left the window are dropped


def test_a_full_limiter_forgets_the_oldest_names_not_everyone() -> None:
    """Before, the 100,001st name cleared every count, the victim's included."""
    now = [T0]
    limiter = SignInLimiter(limit=2, window=600, clock=lambda: now[0], max_names=10)
    limiter.failed("ip:old", "key:old")
    for _ in range(2):
        now[0] += 1
        limiter.failed("ip:1", "key:victim")
    for i in range(8):
        now[0] += 1
        limiter.failed(f"ip:x{i}")
    assert len(limiter._failures) <= 10
    assert limiter.retry_after("ip:2", "key:victim") > 0  # still limited
    assert limiter.retry_after("ip:old", "key:old") == 0  # the oldest were forgotten


def test_a_signed_out_session_is_seen_by_every_worker_until_it_would_expire(
    tmp_path: Path,
) -> None:
    one, two = SignedOut(tmp_path), SignedOut(tmp_path)  # two workers, one data directory
    assert not two.contains("s1", T0)
    one.add("s1", T0 + 100, T0)
    assert two.contains("s1", T0 + 50)
    assert not two.contains("s2", T0 + 50)
    assert not two.contains("s1", T0 + 102)  # the cookie is dead anyway: nothing to hold
    assert stat.S_IMODE(os.stat(tmp_path / SIGNED_OUT_FILE).st_mode) == 0o600


def test_the_signed_out_list_drops_dead_entries_when_it_grows(tmp_path: Path) -> None:
    signed_out = SignedOut(tmp_path)
    signed_out.COMPACT = 10
    for i in range(40):
        signed_out.add(f"old{i:02d}", T0 + 10, T0)
    signed_out.add("live", T0 + 10_000, T0 + 20)
    for i in range(12):
        signed_out.add(f"new{i:02d}", T0 + 10_000, T0 + 20)
    lines = (tmp_path / SIGNED_OUT_FILE).read_text().splitlines()
    assert len(lines) < 20
    assert SignedOut(tmp_path).contains("live", T0 + 30)
    assert SignedOut(tmp_path).contains("new11", T0 + 30)


def test_a_forged_cookie_is_refused_before_its_payload_is_parsed() -> None:
    """A deeply nested payload under a bad MAC raised RecursionError (a 500 and a logged
    traceback on every request that carried it): the MAC is checked first now."""
    c = codec()
    nested = "v1." + base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=") + ".AAAA"
    assert c.decode(nested, T0) is None


def test_a_flash_cookie_this_console_did_not_set_is_ignored() -> None:
    assert _read_flash(base64.urlsafe_b64encode(b"[" * 3000).decode()) is None
    assert _read_flash("not base64 at all!") is None
