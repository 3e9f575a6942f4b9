"""Key material is stored wrapped, unwrapped once per process, and kept in the form its
operations use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.asymmetric import KeyPair
from strongroom.domain.enums import KeySpec, KeyUsage
from strongroom.domain.errors import InvalidCiphertextException, KeyStoreError
from strongroom.domain.models import Key
from strongroom.domain.secrets import KeyBytes
from strongroom.services.cache import KeyCache
from strongroom.services.core import Core
from strongroom.services.material import (
    hmac_secret,
    key_pair,
    new_material,
    store_material,
    symmetric_aead,
)

from .._keys import symmetric_key

pytestmark = pytest.mark.unit

NOW = datetime.now(UTC)


class FakeRootKey:
    """Reversible and AAD-checking, enough to see that material is stored wrapped."""

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        return b"W" + aad + b"|" + secret[::-1]

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        head, _, body = wrapped.partition(b"|")
        if head != b"W" + aad:
            raise KeyStoreError("AAD mismatch")
        return body[::-1]


class FakeMaterial:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def insert(self, arn: str, version: int, wrapped: bytes, now: datetime) -> None:
        self.store.rows[(arn, version)] = wrapped

    def get(self, arn: str, version: int) -> bytes | None:
        self.store.reads += 1
        return self.store.rows.get((arn, version))


class FakeStore:
    """Wrapped material in memory; the store is its own transaction."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], bytes] = {}
        self.reads = 0
        self.material = FakeMaterial(self)

    @contextmanager
    def transaction(self) -> Iterator[FakeStore]:
        yield self


def _key(spec: KeySpec, usage: KeyUsage, name: str) -> Key:
    arn = f"arn:aws:kms:us-east-1:111122223333:key/{name}"
    return symmetric_key().evolve(
        arn=arn, key_id=name, key_usage=usage, key_spec=spec, creation_date=NOW
    )


def _core_with(*keys: Key) -> tuple[Core, FakeStore, dict[str, KeyBytes]]:
    store = FakeStore()
    core = Core(store=store, root_key=FakeRootKey(), cache=KeyCache())  # type: ignore[arg-type]
    made = {}
    for key in keys:
        made[key.arn] = new_material(key.key_spec)
        store_material(core, store, key.arn, 1, made[key.arn], NOW)  # type: ignore[arg-type]
    return core, store, made


def test_material_is_stored_wrapped_never_plain() -> None:
    rsa = _key(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, "rsa")
    _, store, made = _core_with(rsa)
    assert made[rsa.arn].value not in store.rows[(rsa.arn, 1)]


def test_key_pair_is_unwrapped_once_and_then_cached() -> None:
    rsa = _key(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, "rsa")
    core, store, _ = _core_with(rsa)
    first = key_pair(core, rsa)
    assert isinstance(first, KeyPair) and first.spec is KeySpec.RSA_2048
    assert key_pair(core, rsa) is first
    assert store.reads == 1
    core.cache.invalidate(rsa.arn)
    assert key_pair(core, rsa) is not first
    assert store.reads == 2


def test_hmac_secret_is_the_stored_secret_cached() -> None:
    mac = _key(KeySpec.HMAC_384, KeyUsage.GENERATE_VERIFY_MAC, "mac")
    core, store, made = _core_with(mac)
    assert hmac_secret(core, mac) == made[mac.arn]
    assert len(hmac_secret(core, mac)) == 48
    assert store.reads == 1


def test_symmetric_material_of_an_asymmetric_key_is_no_ciphertext_of_ours() -> None:
    rsa = _key(KeySpec.RSA_2048, KeyUsage.ENCRYPT_DECRYPT, "rsa")
    sym = _key(KeySpec.SYMMETRIC_DEFAULT, KeyUsage.ENCRYPT_DECRYPT, "sym")
    core, _, _ = _core_with(rsa, sym)
    key_pair(core, rsa)  # a KeyPair in the cache must not pass for an AES-GCM key
    with pytest.raises(InvalidCiphertextException):
        symmetric_aead(core, rsa, 1)
    assert isinstance(symmetric_aead(core, sym, 1), AESGCM)
    with pytest.raises(InvalidCiphertextException):
        symmetric_aead(core, sym, 2)


def test_missing_key_pair_material_is_an_internal_error() -> None:
    core, _, _ = _core_with()
    ghost: Any = _key(KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY, "ghost")
    with pytest.raises(KeyStoreError):
        key_pair(core, ghost)
