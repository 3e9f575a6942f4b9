"""The software key store: material stored wrapped, unwrapped once per process and kept in
the form its operations use, forgotten when the key changes; the blob format it runs
AES-GCM for is byte-identical to the known vectors."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.asymmetric import generate_private_key
from strongroom.crypto.blob import open_blob, parse_blob, seal
from strongroom.crypto.context import encode_context
from strongroom.crypto.wrap import material_aad
from strongroom.domain.enums import (
    KeySpec,
    KeyUsage,
    MacAlgorithm,
    MessageType,
    SigningAlgorithm,
)
from strongroom.domain.errors import InvalidCiphertextException, KeyStoreError
from strongroom.domain.models import Key
from strongroom.domain.secrets import KeyBytes
from strongroom.keystores.software import MaterialCache, SoftwareKeyStore

from .._keys import symmetric_key
from .._material_store import FakeRootKey, FakeStore, software_core

pytestmark = pytest.mark.unit

NOW = datetime.now(UTC)
VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "blob_v1.json").read_text())[
    "vectors"
]


def _key(spec: KeySpec, usage: KeyUsage, name: str) -> Key:
    arn = f"arn:aws:kms:us-east-1:111122223333:key/{name}"
    return symmetric_key().evolve(arn=arn, key_usage=usage, key_spec=spec, creation_date=NOW)


def _with(*keys: Key) -> tuple[SoftwareKeyStore, FakeStore]:
    """A software store holding fresh material as version 1 of each of ``keys``."""
    _, store, software = software_core()
    for key in keys:
        software.put_material(store, key, 1, software.new_material(key), NOW)  # type: ignore[arg-type]
    return software, store


def _stored(store: FakeStore, key: Key, version: int = 1) -> bytes:
    """The material of a version as stored, unwrapped."""
    return FakeRootKey().unwrap(store.rows[(key.arn, version)], material_aad(key.arn, version))


def test_material_is_stored_wrapped_under_its_key_and_version() -> None:
    rsa = _key(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, "rsa")
    _, store = _with(rsa)
    wrapped = store.rows[(rsa.arn, 1)]
    secret = _stored(store, rsa)
    assert secret not in wrapped and material_aad(rsa.arn, 1) in wrapped


def test_key_pair_is_unwrapped_once_and_forgotten_with_its_key() -> None:
    ecc = _key(KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY, "ecc")
    software, store = _with(ecc)
    public = software.public_key(ecc, 1)
    alg, raw = SigningAlgorithm.ECDSA_SHA_256, MessageType.RAW
    signature = software.sign(ecc, 1, b"m", raw, alg)
    assert software.verify(ecc, 1, b"m", raw, alg, signature)
    assert not software.verify(ecc, 1, b"other", raw, alg, signature)
    assert store.reads == 1
    software.forget(ecc.arn)
    assert software.public_key(ecc, 1) == public
    assert store.reads == 2


def test_hmac_is_the_hmac_of_the_stored_secret_read_once() -> None:
    mac = _key(KeySpec.HMAC_384, KeyUsage.GENERATE_VERIFY_MAC, "mac")
    software, store = _with(mac)
    secret = _stored(store, mac)
    expected = hmac.new(secret, b"msg", hashlib.sha384).digest()
    assert software.generate_mac(mac, 1, b"msg", MacAlgorithm.HMAC_SHA_384) == expected
    assert software.verify_mac(mac, 1, b"msg", MacAlgorithm.HMAC_SHA_384, expected)
    assert not software.verify_mac(mac, 1, b"msg", MacAlgorithm.HMAC_SHA_384, bytes(48))
    assert store.reads == 1


def test_symmetric_encryption_is_aes_gcm_under_the_stored_secret() -> None:
    sym = _key(KeySpec.SYMMETRIC_DEFAULT, KeyUsage.ENCRYPT_DECRYPT, "sym")
    software, store = _with(sym)
    nonce, aad = bytes(12), b"header+context"
    sealed = software.encrypt(sym, 1, nonce, b"plain", aad)
    assert AESGCM(_stored(store, sym)).decrypt(nonce, sealed, aad) == b"plain"
    assert software.decrypt(sym, 1, nonce, sealed, aad) == b"plain"
    with pytest.raises(InvalidCiphertextException):
        software.decrypt(sym, 1, nonce, sealed, b"other aad")
    with pytest.raises(InvalidCiphertextException):
        software.decrypt(sym, 2, nonce, sealed, aad)  # no such version


def test_symmetric_material_of_an_asymmetric_key_is_no_ciphertext_of_ours() -> None:
    rsa = _key(KeySpec.RSA_2048, KeyUsage.ENCRYPT_DECRYPT, "rsa")
    software, _ = _with(rsa)
    software.public_key(rsa, 1)  # a key pair in the cache must not pass for an AES-GCM key
    with pytest.raises(InvalidCiphertextException):
        software.decrypt(rsa, 1, bytes(12), bytes(32), b"")


def test_missing_key_pair_material_is_an_internal_error() -> None:
    software, _ = _with()
    ghost = _key(KeySpec.ECC_NIST_P256, KeyUsage.SIGN_VERIFY, "ghost")
    with pytest.raises(KeyStoreError):
        software.public_key(ghost, 1)


def test_a_read_that_raced_a_forget_is_not_kept() -> None:
    mac = _key(KeySpec.HMAC_256, KeyUsage.GENERATE_VERIFY_MAC, "mac")
    software, store = _with(mac)
    store.during_read = lambda: software.forget(mac.arn)  # the change feed, meanwhile
    software.generate_mac(mac, 1, b"m", MacAlgorithm.HMAC_SHA_256)
    store.during_read = lambda: None
    software.generate_mac(mac, 1, b"m", MacAlgorithm.HMAC_SHA_256)
    software.generate_mac(mac, 1, b"m", MacAlgorithm.HMAC_SHA_256)
    assert store.reads == 2  # the raced read was not kept; the next one was


def test_an_erased_version_is_gone_once_forgotten() -> None:
    sym = _key(KeySpec.SYMMETRIC_DEFAULT, KeyUsage.ENCRYPT_DECRYPT, "sym")
    software, store = _with(sym)
    sealed = software.encrypt(sym, 1, bytes(12), b"p", b"")
    software.erase(store, sym, 1)  # type: ignore[arg-type]
    assert (sym.arn, 1) not in store.rows
    software.forget(sym.arn)  # what the service's recorded change does
    with pytest.raises(InvalidCiphertextException):
        software.decrypt(sym, 1, bytes(12), sealed, b"")


def test_same_material_compares_secrets_and_public_keys() -> None:
    sym = _key(KeySpec.SYMMETRIC_DEFAULT, KeyUsage.ENCRYPT_DECRYPT, "sym")
    rsa = _key(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, "rsa")
    software, store = _with(sym, rsa)
    tx: Any = store
    assert software.same_material(tx, sym, 1, KeyBytes(_stored(store, sym)))
    assert not software.same_material(tx, sym, 1, KeyBytes(bytes(32)))
    assert not software.same_material(tx, sym, 2, KeyBytes(_stored(store, sym)))
    assert software.same_material(tx, rsa, 1, KeyBytes(_stored(store, rsa)))
    assert not software.same_material(tx, rsa, 1, generate_private_key(KeySpec.RSA_2048))


def test_given_material_is_stored_as_given() -> None:
    sym = _key(KeySpec.SYMMETRIC_DEFAULT, KeyUsage.ENCRYPT_DECRYPT, "sym")
    software, store = _with()
    given = KeyBytes(bytes(range(32)))
    software.put_material(store, sym, 1, software.new_material(sym, given), NOW)  # type: ignore[arg-type]
    assert _stored(store, sym) == given.value


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["key_id"][:8] + str(v["material_version"]))
def test_known_blobs_open_through_the_store(v: dict[str, Any]) -> None:
    """The blob format stays crypto.blob's: a blob made before key stores opens through the
    store, and a blob the store seals opens with plain AES-GCM over the same header."""
    key = symmetric_key().evolve(
        arn=f"arn:aws:kms:us-east-1:{v['account']}:key/{v['key_id']}",
        account=v["account"],
    )
    version = v["material_version"]
    software, store = _with()
    secret = KeyBytes(bytes.fromhex(v["key"]))
    software.put_material(store, key, version, software.new_material(key, secret), NOW)  # type: ignore[arg-type]
    aad = encode_context(v["context"])
    opened = open_blob(
        partial(software.decrypt, key, version), parse_blob(bytes.fromhex(v["blob"])), aad
    )
    assert opened == bytes.fromhex(v["plaintext"])
    made = parse_blob(
        seal(partial(software.encrypt, key, version), key.account, key.key_id, version, b"x", aad)
    )
    assert AESGCM(secret.value).decrypt(made.nonce, made.sealed, made.header + aad) == b"x"


def test_a_multi_region_key_change_drops_the_material_its_replicas_cached() -> None:
    cache = MaterialCache()
    key_id = "mrk-1234abcd12ab34cd56ef1234567890ab"
    primary = f"arn:aws:kms:us-east-1:111122223333:key/{key_id}"
    replica = f"arn:aws:kms:eu-west-1:111122223333:key/{key_id}"
    other = f"arn:aws:kms:eu-west-1:444455556666:key/{key_id}"  # another account
    secret = KeyBytes(b"m")
    for arn in (primary, replica, other):
        cache.put(arn, 1, secret, cache.generation)
    cache.forget(primary)  # e.g. DeleteImportedKeyMaterial on the primary
    assert cache.get(primary, 1) is None and cache.get(replica, 1) is None
    assert cache.get(other, 1) is secret


def test_the_key_cache_forgets_through_the_stores() -> None:
    core, store, software = software_core()
    mac = _key(KeySpec.HMAC_256, KeyUsage.GENERATE_VERIFY_MAC, "mac")
    software.put_material(store, mac, 1, software.new_material(mac), NOW)  # type: ignore[arg-type]
    store_for_key = core.keystores.for_key(mac)
    assert store_for_key is software
    store_for_key.generate_mac(mac, 1, b"m", MacAlgorithm.HMAC_SHA_256)
    core.cache.invalidate(mac.arn)  # a change of the key (DisableKey, erasure, the feed)
    store_for_key.generate_mac(mac, 1, b"m", MacAlgorithm.HMAC_SHA_256)
    core.cache.clear()
    store_for_key.generate_mac(mac, 1, b"m", MacAlgorithm.HMAC_SHA_256)
    assert store.reads == 3


def test_a_cache_of_zero_keys_unwraps_for_every_operation() -> None:
    key = _key(KeySpec.SYMMETRIC_DEFAULT, KeyUsage.ENCRYPT_DECRYPT, "nocache")
    for cache_keys, reads in ((100, 1), (0, 3)):
        store, root_key = FakeStore(), FakeRootKey()
        software = SoftwareKeyStore(store, root_key, cache_keys)  # type: ignore[arg-type]
        software.put_material(store, key, 1, software.new_material(key), NOW)  # type: ignore[arg-type]
        before = store.reads
        for _ in range(3):
            software.encrypt(key, 1, b"\0" * 12, b"plaintext", b"aad")
        assert store.reads - before == reads


def test_a_full_material_cache_lets_the_least_recently_used_key_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(MaterialCache, "CIPHERS", 1)  # the bytes' order, not the ciphers'
    keys = [_key(KeySpec.SYMMETRIC_DEFAULT, KeyUsage.ENCRYPT_DECRYPT, f"k{i}") for i in range(4)]
    store, root_key = FakeStore(), FakeRootKey()
    software = SoftwareKeyStore(store, root_key, 3)  # type: ignore[arg-type]
    for key in keys:
        software.put_material(store, key, 1, software.new_material(key), NOW)  # type: ignore[arg-type]

    def reads_for(*used: Key) -> int:
        before = store.reads
        for key in used:
            software.encrypt(key, 1, b"\0" * 12, b"plaintext", b"aad")
        return store.reads - before

    assert reads_for(keys[0], keys[1], keys[2]) == 3
    assert reads_for(keys[0]) == 0  # keys[1] is now the least recently used
    assert reads_for(keys[3]) == 1  # full: keys[1] goes, not every key
    assert reads_for(keys[0], keys[2], keys[3]) == 0
    assert reads_for(keys[1]) == 1


def test_symmetric_material_is_kept_as_bytes_beside_a_few_ready_ciphers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(MaterialCache, "CIPHERS", 2)
    keys = [_key(KeySpec.SYMMETRIC_DEFAULT, KeyUsage.ENCRYPT_DECRYPT, f"s{i}") for i in range(5)]
    software, store = _with(*keys)
    sealed = [software.encrypt(k, 1, b"\0" * 12, k.key_id.encode(), b"") for k in keys]
    before = store.reads
    for key, blob in zip(keys, sealed, strict=True):
        assert software.decrypt(key, 1, b"\0" * 12, blob, b"") == key.key_id.encode()
    assert store.reads == before  # every key's bytes are kept, only two ciphers
    cache = software._cache
    assert len(cache) == 5 and len(cache._ciphers) == 2
    assert all(isinstance(cache.get(k.arn, 1), KeyBytes) for k in keys)
    software.forget(keys[4].arn)
    assert cache.get(keys[4].arn, 1) is None and cache.cipher(keys[4].arn, 1) is None


def test_the_material_cache_keeps_every_version_of_a_key_under_one_entry() -> None:
    cache = MaterialCache(max_entries=1)
    arn = "arn:aws:kms:us-east-1:111122223333:key/rotated"
    first, second, again = KeyBytes(b"1" * 32), KeyBytes(b"2" * 32), KeyBytes(b"3" * 32)
    cache.put(arn, 1, first, cache.generation)
    cache.put(arn, 2, second, cache.generation)
    assert len(cache) == 1
    assert cache.get(arn, 1) is first and cache.get(arn, 2) is second
    cache.put(arn, 1, again, cache.generation)  # read anew: replaces, never duplicates
    assert cache.get(arn, 1) is again and cache.get(arn, 2) is second
    assert cache.get(arn, 3) is None
