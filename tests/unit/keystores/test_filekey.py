"""The file root key: its key check value, and that a root key file is never overwritten."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from strongroom.domain.errors import KeyStoreError
from strongroom.keystores.filekey import FileRootKey, check_value

pytestmark = pytest.mark.unit

KEY = bytes(range(32))
# Recorded in databases: a change of the construction would make every server refuse its
# own database. Computed once and kept.
KNOWN_CHECK_VALUE = "e6b65a3a7ed6693f7c953b43e3a2ecaa18a95f5ec7e89ab0df3095544e2235a0"


def _by_the_rfcs(key: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869: no salt is 32 zero bytes; one block of output) and
    HMAC-SHA256 (RFC 2104), written out with the standard library."""
    prk = hmac.new(bytes(32), key, hashlib.sha256).digest()
    check_key = hmac.new(prk, b"strongroom root key check value v1" + b"\x01", hashlib.sha256)
    return hmac.new(check_key.digest(), b"strongroom root key check", hashlib.sha256).digest()


def test_the_check_value_is_the_documented_construction() -> None:
    assert check_value(KEY).hex() == KNOWN_CHECK_VALUE
    assert check_value(KEY) == _by_the_rfcs(KEY)


def test_the_check_value_names_the_key_and_is_not_the_key() -> None:
    other = bytes(31) + b"\x01"
    assert check_value(other) != check_value(KEY)
    assert KEY not in check_value(KEY)


def test_a_file_root_key_gives_its_check_value(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    path.write_bytes(KEY)
    path.chmod(0o600)
    assert FileRootKey(path).check_value() == check_value(KEY)


def test_create_never_overwrites_and_load_never_creates(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    with pytest.raises(KeyStoreError, match="does not exist"):
        FileRootKey(path)
    assert not path.exists()
    made = FileRootKey.create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        FileRootKey.create(path)
    assert FileRootKey(path).check_value() == made.check_value()
