"""The token side of the proxy: the external keys are AES-256 keys in one PKCS#11 token,
found by label (the externalKeyId); their usage is the key's own CKA_ENCRYPT and
CKA_DECRYPT, so the token enforces it too. AES-GCM runs in the token with the spec's AAD
(the lengths of additionalAuthenticatedData and ciphertextMetadata included); the key never
leaves it. Every call goes through ``Token.run`` (the process-wide PKCS#11 lock), made on
the app's event loop.

A key's usage attributes are read from the token at most every ``USAGE_SECONDS`` per key
(and again whenever the token gives a new key object: after an error or a new session),
since each attribute read costs SoftHSM2 two rounds of opening, locking and reading its
files. The token itself still refuses an operation its key's attributes forbid (a refusal
voids the cached key object, so the next request reads the attributes anew).
"""

from __future__ import annotations

import hashlib
import secrets
import struct
import time
from dataclasses import dataclass
from typing import Any

from pkcs11 import Attribute, KeyType, Mechanism
from pkcs11 import exceptions as p11e
from pkcs11.mechanisms import GCMParams

from strongroom.domain.errors import KeyStoreError
from strongroom.keystores.pkcs11_token import AES_KEY_TEMPLATE, Token, TokenUnavailable
from strongroom.xks_proxy.errors import (
    InternalException,
    InvalidCiphertextException,
    InvalidKeyUsageException,
    InvalidStateException,
    KeyNotFoundException,
)
from strongroom.xks_proxy.requests import TAG_LENGTH

IV_BYTES = 12
ENCRYPT = "ENCRYPT"
DECRYPT = "DECRYPT"
HEALTH_PROBE_LABEL = "strongroom-xks-health-probe"
"""The token key a health check encrypts with (made at start, encrypt-only, never served as
an external key), as the spec advises: never a KMS key's."""
USAGE_SECONDS = 1.0
"""How long a key's CKA_ENCRYPT and CKA_DECRYPT, once read, are used without reading again."""


def gcm_aad(aad: bytes | None, ciphertext_metadata: bytes | None) -> bytes:
    """The AAD given to AES-GCM: 2-byte big-endian length of additionalAuthenticatedData,
    the AAD, 1-byte length of ciphertextMetadata, the metadata (absent fields are empty),
    so that metadata passed as AAD, or the reverse, never decrypts."""
    aad = aad or b""
    metadata = ciphertext_metadata or b""
    return struct.pack(">H", len(aad)) + aad + struct.pack(">B", len(metadata)) + metadata


def integrity_value(
    aad: bytes | None, ciphertext_metadata: bytes | None, iv: bytes, ciphertext: bytes, tag: bytes
) -> bytes:
    """The ciphertextDataIntegrityValue (SHA_256): SHA-256 of AAD || ciphertextMetadata ||
    IV || ciphertext || tag, absent fields empty."""
    return hashlib.sha256(
        (aad or b"") + (ciphertext_metadata or b"") + iv + ciphertext + tag
    ).digest()


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    iv: bytes
    tag: bytes


@dataclass(frozen=True)
class Health:
    vendor: str
    model: str
    serial: str
    status: str  # ACTIVE or UNAVAILABLE


class TokenKeys:
    """The external keys of one token."""

    def __init__(
        self,
        token: Token,
        allowed: frozenset[str] | None = None,
        disabled: frozenset[str] = frozenset(),
    ) -> None:
        """``allowed``: the only key ids served (None: every AES key of the token);
        ``disabled``: keys whose status is DISABLED (metadata says so, encrypt and decrypt
        are InvalidStateException)."""
        self.token = token
        self.allowed = allowed
        self.disabled = disabled
        # key id -> (the key object read, can encrypt, can decrypt, read again after)
        self._usages: dict[str, tuple[Any, bool, bool, float]] = {}

    def status(self, key_id: str) -> str:
        return "DISABLED" if key_id in self.disabled else "ENABLED"

    def _enabled(self, key_id: str) -> None:
        if key_id in self.disabled:
            raise InvalidStateException(f"external key {key_id!r} is disabled")

    def _key(self, session: Any, key_id: str) -> Any:
        if key_id == HEALTH_PROBE_LABEL or (
            self.allowed is not None and key_id not in self.allowed
        ):
            raise KeyNotFoundException(f"no external key with keyId {key_id!r}")
        try:
            return self.token.find_key(session, key_id, KeyType.AES)
        except (p11e.NoSuchKey, p11e.MultipleObjectsReturned):
            raise KeyNotFoundException(f"no external key with keyId {key_id!r}") from None

    def _usage(self, key_id: str, key: Any) -> tuple[bool, bool]:
        """(CKA_ENCRYPT, CKA_DECRYPT) of ``key`` (call inside ``Token.run``)."""
        now = time.monotonic()
        cached = self._usages.get(key_id)
        if cached is not None and cached[0] is key and now < cached[3]:
            return cached[1], cached[2]
        can_encrypt, can_decrypt = bool(key[Attribute.ENCRYPT]), bool(key[Attribute.DECRYPT])
        if len(self._usages) >= 4096:
            self._usages.clear()
        self._usages[key_id] = (key, can_encrypt, can_decrypt, now + USAGE_SECONDS)
        return can_encrypt, can_decrypt

    def _run(self, fn: Any) -> Any:
        try:
            return self.token.run(fn)
        except (TokenUnavailable, KeyStoreError) as e:
            raise InternalException(f"the key manager is not available: {e}") from None

    def usage(self, key_id: str) -> list[str]:
        """The key's usage (ENCRYPT, DECRYPT, both or neither); KeyNotFoundException."""

        def read(session: Any) -> list[str]:
            can_encrypt, can_decrypt = self._usage(key_id, self._key(session, key_id))
            found = []
            if can_encrypt:
                found.append(ENCRYPT)
            if can_decrypt:
                found.append(DECRYPT)
            return found

        result: list[str] = self._run(read)
        return result

    def encrypt(
        self, key_id: str, plaintext: bytes, aad: bytes, *, decryptable: bool = False
    ) -> Sealed:
        """AES-GCM in the token with a fresh random 96-bit IV. With ``decryptable`` (the
        caller asked for a ciphertextDataIntegrityValue, the proxy's promise that the
        ciphertext will decrypt), a key that cannot decrypt is InvalidKeyUsageException too."""
        iv = secrets.token_bytes(IV_BYTES)

        def seal(session: Any) -> bytes:
            key = self._key(session, key_id)
            self._enabled(key_id)
            can_encrypt, can_decrypt = self._usage(key_id, key)
            if not can_encrypt:
                raise InvalidKeyUsageException(f"external key {key_id!r} cannot encrypt")
            if decryptable and not can_decrypt:
                raise InvalidKeyUsageException(
                    f"external key {key_id!r} cannot decrypt, so a ciphertextDataIntegrityValue "
                    "(a promise that the ciphertext decrypts) cannot be given"
                )
            out: bytes = key.encrypt(
                plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, aad, 128)
            )
            return out

        sealed: bytes = self._run(seal)
        return Sealed(sealed[:-TAG_LENGTH], iv, sealed[-TAG_LENGTH:])

    def decrypt(self, key_id: str, sealed: Sealed, aad: bytes) -> bytes:
        """AES-GCM decryption in the token; InvalidCiphertextException when the tag does not
        verify (wrong AAD, IV, ciphertext or tag)."""

        def open_(session: Any) -> bytes:
            key = self._key(session, key_id)
            self._enabled(key_id)
            if not self._usage(key_id, key)[1]:
                raise InvalidKeyUsageException(f"external key {key_id!r} cannot decrypt")
            out: bytes = key.decrypt(
                sealed.ciphertext + sealed.tag,
                mechanism=Mechanism.AES_GCM,
                mechanism_param=GCMParams(sealed.iv, aad, 128),
            )
            return out

        try:
            plaintext: bytes = self._run(open_)
        except p11e.PKCS11Error:
            raise InvalidCiphertextException(
                "the ciphertext, initialization vector, additional authenticated data or "
                "authentication tag is invalid"
            ) from None
        return plaintext

    def prepare_probe(self) -> None:
        """Make the health check's probe key when the token has none."""
        self.create(HEALTH_PROBE_LABEL, [ENCRYPT])

    def health(self) -> Health:
        """The token's vendor, model, serial and whether it answers now."""

        def read(session: Any) -> Health:
            # An encryption with the probe key reaches the token (its information may be
            # cached by the module): a token that went away fails here. Never a KMS key's.
            probe = self.token.find_key(session, HEALTH_PROBE_LABEL, KeyType.AES)
            probe.encrypt(
                bytes(16),
                mechanism=Mechanism.AES_GCM,
                mechanism_param=GCMParams(secrets.token_bytes(IV_BYTES), b"", 128),
            )
            token = session.token
            return Health(
                vendor=str(token.manufacturer_id).strip() or "unknown",
                model=str(token.model).strip() or "unknown",
                serial=str(
                    token.serial.decode() if isinstance(token.serial, bytes) else token.serial
                ).strip()
                or self.token.label,
                status="ACTIVE",
            )

        try:
            result: Health = self.token.run(read)
        except (KeyStoreError, p11e.PKCS11Error):
            return Health("unknown", "unknown", self.token.label, "UNAVAILABLE")
        return result

    def create(self, key_id: str, usage: list[str]) -> None:
        """Generate an AES-256 key labelled ``key_id`` with ``usage`` in the token (nothing
        when one exists)."""

        def make(session: Any) -> None:
            try:
                session.get_key(label=key_id, key_type=KeyType.AES)
                return
            except p11e.NoSuchKey:
                pass
            template = dict(AES_KEY_TEMPLATE)
            template[Attribute.ENCRYPT] = ENCRYPT in usage
            template[Attribute.DECRYPT] = DECRYPT in usage
            session.generate_key(KeyType.AES, 256, label=key_id, template=template)

        self.token.run(make)
