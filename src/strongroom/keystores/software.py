"""The software key store: material wrapped under the root key, used in this process.

Every key spec's material is stored the same way (table ``key_materials``, wrapped by the
``RootKey`` with ``crypto.wrap.material_aad``: the key ARN and version): 32 random bytes
for a symmetric encryption key, the secret for an HMAC key, the PKCS#8 private key for a
key pair. Once unwrapped it stays in a per-process cache in the form its operations use
(``Material``), so that steady-state operations read no row and take no lock.

A multi-Region replica of a key whose material KMS generated has no material rows of its
own: it reads every version through its primary key's ARN (``material_arn``), so a
version added to the primary is at once usable in every Region. Imported material is
each key's own, replicas included (``services.mrk_material``).
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto import asymmetric, kem
from strongroom.crypto import hmac as crypto_hmac
from strongroom.crypto.asymmetric import KeyPair, generate_private_key, load_key_pair
from strongroom.crypto.specs import SYMMETRIC_KEY_BYTES
from strongroom.crypto.wrap import material_aad
from strongroom.domain.enums import (
    EncapsulationAlgorithm,
    EncryptionAlgorithm,
    KeyAgreementAlgorithm,
    MacAlgorithm,
    MessageType,
    Origin,
    SigningAlgorithm,
    SpecFamily,
)
from strongroom.domain.errors import InvalidCiphertextException, KeyStoreError
from strongroom.domain.ids import key_arn
from strongroom.domain.lru import LruDict
from strongroom.domain.models import Key
from strongroom.domain.secrets import KeyBytes
from strongroom.keystores.base import NewMaterial, RootKey
from strongroom.storage.ports import Store, Transaction

Material = KeyPair | KeyBytes
"""Unwrapped material, ready to use: the parsed key pair of an asymmetric key, the secret
of a symmetric encryption key or an HMAC key."""

M = TypeVar("M", KeyPair, KeyBytes)


def material_arn(key: Key) -> str:
    """The ARN whose rows hold ``key``'s material: the key's own, or, for a multi-Region
    replica of generated material, its primary's (AWS copies the primary's material to its
    replicas; here they read it from there). Imported material AWS does not copy: each key
    of the set has its own. ``services.material.material_source`` applies the same rule to
    the current version number."""
    if (
        key.primary_region is None
        or key.primary_region == key.region
        or key.origin is Origin.EXTERNAL
    ):
        return key.arn
    return key_arn(key.primary_region, key.account, key.key_id)


class MaterialCache:
    """Unwrapped material by key ARN and version, bounded: at most ``max_entries`` keys
    (setting ``material_cache_keys``, 100,000 by default; every version of a key counts as
    one), the least recently used key going first when full; 0 keeps nothing, so every
    operation reads its key's wrapped row and unwraps it under the root key (in the token,
    for a PKCS#11 root).

    A symmetric key's material is kept as its 32 bytes, not as the ``AESGCM`` instance its
    operations use (pyca's keeps two cipher contexts: about 2.6 kB a key against about 0.2 kB).
    The instances of the ``CIPHERS`` most recently used symmetric keys are kept beside (up to
    four versions each), so a hot key builds none; another builds one per operation (about
    1 µs).

    Reads take no lock. A load notes ``generation`` before it reads rows and ``put`` keeps
    the result only if no ``forget`` came in meanwhile: the rows may have changed since
    (DeleteImportedKeyMaterial announced by another process)."""

    CIPHERS = 1024

    def __init__(self, max_entries: int = 100_000) -> None:
        # A key's versions, flat: (version, material, version, material, ...); most keys
        # have one, kept in one 2-tuple.
        self._materials: LruDict[str, tuple[int | Material, ...]] = LruDict(max_entries)
        # The ready instances of the most recently used keys (at most four versions each).
        self._ciphers: LruDict[str, tuple[tuple[int, AESGCM], ...]] = LruDict(
            min(max_entries, self.CIPHERS)
        )
        self._generation = 0
        self._max = max_entries
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        return self._generation

    def __len__(self) -> int:
        """The number of keys whose material is kept."""
        return len(self._materials)

    def get(self, arn: str, version: int) -> Material | None:
        versions = self._materials.hit(arn)
        if versions is not None:
            for i in range(0, len(versions), 2):
                if versions[i] == version:
                    return cast(Material, versions[i + 1])
        return None

    def cipher(self, arn: str, version: int) -> AESGCM | None:
        """The AES-GCM instance of a symmetric version, when one of the most recently used;
        else None (then ``get`` gives its bytes)."""
        ciphers = self._ciphers
        found = ciphers.get(arn)
        if found is None:
            return None
        try:  # noqa: SIM105 (suppress() costs more) LruDict.hit, inlined: every operation
            ciphers.move_to_end(arn)
        except KeyError:
            pass
        for number, aead in found:
            if number == version:
                return aead
        return None

    def put_cipher(self, arn: str, version: int, aead: AESGCM, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                versions = self._ciphers.get(arn, ())
                others = tuple(pair for pair in versions if pair[0] != version)
                self._ciphers.keep(arn, (*others[-3:], (version, aead)))

    def put(self, arn: str, version: int, material: Material, generation: int) -> None:
        with self._lock:
            if generation != self._generation or not self._max:
                return
            versions = self._materials.get(arn, ())
            others = [
                item
                for i in range(0, len(versions), 2)
                if versions[i] != version
                for item in versions[i : i + 2]
            ]
            self._materials.keep(arn, (*others, version, material))

    def forget(self, arn: str) -> None:
        """Drop a key's material; for a multi-Region key, that of every related key of the
        account too (a replica caches under its own ARN what it read through its primary:
        a change of the primary's material, an erasure say, must reach it)."""
        with self._lock:
            self._generation += 1
            self._materials.pop(arn, None)
            related = [arn]
            if ":key/mrk-" in arn:
                _, _, _, _, account, resource = arn.split(":", 5)
                related = [
                    a
                    # A snapshot (one C call): a lock-free hit elsewhere reorders the map.
                    for a in list(self._materials)
                    if a.endswith(":" + resource) and a.split(":", 5)[4] == account
                ]
                for other in related:
                    del self._materials[other]
                related.append(arn)
            for other in related:
                self._ciphers.pop(other, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._materials.clear()
            self._ciphers.clear()


class _Fresh(NewMaterial):
    __slots__ = ("secret",)

    def __init__(self, secret: KeyBytes) -> None:
        self.secret = secret


class SoftwareKeyStore:
    """Key material wrapped by ``root_key`` in ``store``, unwrapped once per process."""

    def __init__(self, store: Store, root_key: RootKey, max_entries: int = 100_000) -> None:
        self._store = store
        self._root_key = root_key
        self._cache = MaterialCache(max_entries)

    # --- material lifecycle -------------------------------------------------------------

    def new_material(self, key: Key, given: KeyBytes | None = None) -> NewMaterial:
        """Fresh material of the key's spec (UnsupportedOperationException for specs this
        build refuses), or ``given``."""
        return _Fresh(generate_private_key(key.key_spec) if given is None else given)

    def put_material(
        self, tx: Transaction, key: Key, version: int, material: NewMaterial, now: datetime
    ) -> None:
        if not isinstance(material, _Fresh):
            raise KeyStoreError(f"material for {key.arn} was not made by the software store")
        self._insert(tx, key.arn, version, material.secret, now)

    def copy_material(
        self, tx: Transaction, source: Key, target: Key, versions: Iterable[int], now: datetime
    ) -> None:
        """Re-wrap each version ``target`` lacks and ``source`` has with ``target``'s ARN in
        the AAD."""
        for version in versions:
            if tx.material.get(target.arn, version) is not None:
                continue
            raw = self._stored(tx, source.arn, version)
            if raw is not None:
                self._insert(tx, target.arn, version, raw, now)

    def same_material(self, tx: Transaction, key: Key, version: int, material: KeyBytes) -> bool:
        stored = self._stored(tx, key.arn, version)
        if stored is None:
            return False
        if key.key_spec in SYMMETRIC_KEY_BYTES:
            return hmac.compare_digest(stored.value, material.value)
        # The same private key can be encoded more than one way; its public key cannot.
        spec = key.key_spec
        return asymmetric.public_key_der(spec, stored) == asymmetric.public_key_der(spec, material)

    def erase(self, tx: Transaction, key: Key, version: int) -> None:
        """Delete the wrapped row; every process drops its cached copy through the change
        the service records (``forget``)."""
        tx.material.delete(key.arn, version)

    def destroy(self, tx: Transaction, key: Key) -> None:
        """Nothing beyond what deleting the key does: ``KeyRepository.delete`` deletes its
        wrapped rows in the same transaction."""

    def discard(self, key: Key) -> None:
        """Nothing: the software store keeps nothing outside the database."""

    def forget(self, arn: str) -> None:
        self._cache.forget(arn)

    def forget_all(self) -> None:
        self._cache.clear()

    # --- symmetric encryption -----------------------------------------------------------

    def encrypt(self, key: Key, version: int, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aead(key, version).encrypt(nonce, plaintext, aad)

    def decrypt(self, key: Key, version: int, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        aead = self._aead(key, version)
        try:
            return aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise InvalidCiphertextException() from None

    def _aead(self, key: Key, version: int) -> AESGCM:
        """The AES-GCM instance of a version (its bytes cached, the instance too for the most
        recently used). A version that does not exist, or a key that is not a symmetric
        encryption key, means the ciphertext is not one of this key's:
        InvalidCiphertextException."""
        cache = self._cache
        aead = cache.cipher(key.arn, version)
        if aead is not None:
            return aead
        if key.key_spec.family is not SpecFamily.SYMMETRIC:
            raise InvalidCiphertextException()
        generation = cache.generation
        raw = cache.get(key.arn, version)
        if not isinstance(raw, KeyBytes):
            raw = self._load(key, version, lambda loaded: loaded, _no_ciphertext)
        aead = AESGCM(raw.value)
        cache.put_cipher(key.arn, version, aead, generation)
        return aead

    # --- asymmetric keys and HMAC --------------------------------------------------------

    def public_key(self, key: Key, version: int) -> bytes:
        return asymmetric.public_key_der(key.key_spec, self._pair(key, version))

    def sign(
        self,
        key: Key,
        version: int,
        message: bytes,
        message_type: MessageType,
        algorithm: SigningAlgorithm,
    ) -> bytes:
        pair = self._pair(key, version)
        return asymmetric.sign(key.key_spec, pair, message, message_type, algorithm)

    def verify(
        self,
        key: Key,
        version: int,
        message: bytes,
        message_type: MessageType,
        algorithm: SigningAlgorithm,
        signature: bytes,
    ) -> bool:
        pair = self._pair(key, version)
        return asymmetric.verify(key.key_spec, pair, message, message_type, algorithm, signature)

    def rsa_encrypt(
        self, key: Key, version: int, plaintext: bytes, algorithm: EncryptionAlgorithm
    ) -> bytes:
        return asymmetric.rsa_encrypt(key.key_spec, self._pair(key, version), plaintext, algorithm)

    def rsa_decrypt(
        self, key: Key, version: int, ciphertext: bytes, algorithm: EncryptionAlgorithm
    ) -> bytes:
        pair = self._pair(key, version)
        return asymmetric.rsa_decrypt(key.key_spec, pair, ciphertext, algorithm)

    def generate_mac(
        self, key: Key, version: int, message: bytes, algorithm: MacAlgorithm
    ) -> bytes:
        secret = self._secret(key, version)
        return crypto_hmac.generate_mac(key.key_spec, secret, message, algorithm)

    def verify_mac(
        self, key: Key, version: int, message: bytes, algorithm: MacAlgorithm, mac: bytes
    ) -> bool:
        secret = self._secret(key, version)
        return crypto_hmac.verify_mac(key.key_spec, secret, message, algorithm, mac)

    def derive_shared_secret(
        self, key: Key, version: int, public_key: bytes, algorithm: KeyAgreementAlgorithm
    ) -> KeyBytes:
        pair = self._pair(key, version)
        return asymmetric.derive_shared_secret(key.key_spec, pair, public_key, algorithm)

    def encapsulate(
        self, key: Key, version: int, algorithm: EncapsulationAlgorithm
    ) -> tuple[bytes, KeyBytes]:
        return kem.encapsulate(key.key_spec, self._pair(key, version), algorithm)

    def decapsulate(
        self, key: Key, version: int, ciphertext: bytes, algorithm: EncapsulationAlgorithm
    ) -> KeyBytes:
        return kem.decapsulate(key.key_spec, self._pair(key, version), ciphertext, algorithm)

    def _pair(self, key: Key, version: int) -> KeyPair:
        """The parsed key pair of an asymmetric key's version, cached."""
        found = self._cache.get(key.arn, version)
        if isinstance(found, KeyPair):
            return found
        return self._load(key, version, lambda raw: load_key_pair(key.key_spec, raw), _no_material)

    def _secret(self, key: Key, version: int) -> KeyBytes:
        """The secret of an HMAC key's version, cached."""
        found = self._cache.get(key.arn, version)
        if isinstance(found, KeyBytes):
            return found
        return self._load(key, version, lambda raw: raw, _no_material)

    # --- rows -----------------------------------------------------------------------------

    def _insert(
        self, tx: Transaction, arn: str, version: int, material: KeyBytes, now: datetime
    ) -> None:
        wrapped = self._root_key.wrap(material.value, material_aad(arn, version))
        tx.material.insert(arn, version, wrapped, now)

    def _stored(self, tx: Transaction, arn: str, version: int) -> KeyBytes | None:
        wrapped = tx.material.get(arn, version)
        if wrapped is None:
            return None
        return KeyBytes(self._root_key.unwrap(wrapped, material_aad(arn, version)))

    def _load(
        self,
        key: Key,
        version: int,
        parse: Callable[[KeyBytes], M],
        missing: Callable[[Key, int], Exception],
    ) -> M:
        """Unwrap a version from the rows of ``key``'s material ARN; cache it under ``key``."""
        arn = material_arn(key)
        generation = self._cache.generation
        with self._store.read() as tx:
            wrapped = tx.material.get(arn, version)
        if wrapped is None:
            raise missing(key, version)
        loaded = parse(KeyBytes(self._root_key.unwrap(wrapped, material_aad(arn, version))))
        self._cache.put(key.arn, version, loaded, generation)
        return loaded


def _no_ciphertext(key: Key, version: int) -> Exception:
    return InvalidCiphertextException()


def _no_material(key: Key, version: int) -> Exception:
    return KeyStoreError(f"{key.arn} has no key material version {version}")
