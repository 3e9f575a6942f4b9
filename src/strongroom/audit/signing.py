"""The key that signs the audit digests: Ed25519, made on first start, kept wrapped under the
root key, its public key written beside the digests for verifiers.

Files, in the audit directory:

* ``signing-key.json`` (mode 0600): ``{"version": 1, "algorithm": "Ed25519",
  "fingerprint": <hex>, "wrapped": <base64>}``. ``wrapped`` is the 32-byte private key
  wrapped under the root key (``RootKey.wrap``), bound to an AAD that names the purpose and
  the fingerprint. The private key is never at rest in plaintext.
* ``public-keys/<fingerprint>.pem``: every public key that ever signed digests here
  (SubjectPublicKeyInfo PEM). The fingerprint is the SHA-256 of the raw 32-byte public key,
  in hex; each digest names the fingerprint of the key that signed it.

When the root key a server starts with no longer unwraps the signing key (its root key was
replaced and the old one retired), a new signing key is made and the old file kept aside:
digests already signed still verify with the old public key, which stays in
``public-keys/``. A signing key wrapped under a root key that is not the active one of the
ring (after a root key rotation) is wrapped again under the active one at start.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from strongroom.crypto.wrap import wrapped_key_id
from strongroom.domain.errors import KeyStoreError
from strongroom.keystores.base import RootKey

log = logging.getLogger(__name__)

KEY_FILE = "signing-key.json"
PUBLIC_KEYS = "public-keys"
ALGORITHM = "Ed25519"
_AAD = b"strongroom audit digest signing key v1 "


def fingerprint(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True, slots=True)
class Signer:
    """Signs digests with the audit signing key (its repr shows the fingerprint only)."""

    fingerprint: str
    _key: Ed25519PrivateKey = field(repr=False)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()


def load_signer(directory: Path, root_key: RootKey) -> Signer:
    """The signing key of the audit directory: unwrapped from ``signing-key.json``, or made
    and stored there on first start (several workers starting at once agree on one key).
    Raises KeyStoreError when the root key cannot wrap a new key."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / KEY_FILE
    for _ in range(3):  # a key file another worker is writing right now: read it again
        try:
            stored = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            signer = _create(directory, root_key)
            if signer is not None:
                return signer
            continue  # another worker made it first
        except orjson.JSONDecodeError:
            time.sleep(0.05)
            continue
        signer = _open(directory, root_key, stored)
        if signer is not None:
            return signer
        aside = path.with_name(f"{KEY_FILE}.{stored.get('fingerprint', 'unknown')}.unusable")
        log.error(
            "audit: the signing key in %s does not unwrap under the root key (was the root "
            "key replaced?); it is kept as %s and a new signing key signs from now on: "
            "digests signed by the old one still verify with its public key",
            path,
            aside,
        )
        os.replace(path, aside)
    raise KeyStoreError(f"cannot read or make the audit signing key {path}")


def _open(directory: Path, root_key: RootKey, stored: dict[str, str]) -> Signer | None:
    """The signer of a stored key file (None when it does not unwrap)."""
    wrapped = base64.b64decode(stored["wrapped"])
    aad = _AAD + stored["fingerprint"].encode()
    try:
        raw = root_key.unwrap(wrapped, aad)
    except KeyStoreError:
        return None
    key = Ed25519PrivateKey.from_private_bytes(raw)
    signer = Signer(fingerprint(key.public_key()), key)
    if signer.fingerprint != stored["fingerprint"]:
        return None
    _write_public_key(directory, signer.public_key)  # a copy lost or never written
    _wrap_again(directory, root_key, signer, wrapped)
    return signer


def rewrap_signing_key(directory: Path, root_key: RootKey, signer: Signer) -> bool:
    """Wrap the stored signing key again under the root key's active key if another key
    wraps it (a root key migration or rotation made a new one active): the old key may be
    retired before the next start. Returns whether it did; raises OSError or KeyStoreError
    when it cannot."""
    stored = orjson.loads((directory / KEY_FILE).read_bytes())
    if stored["fingerprint"] != signer.fingerprint:
        return False  # another key was made since (this one's root key retired): keep it
    return _wrap_again(directory, root_key, signer, base64.b64decode(stored["wrapped"]))


def _wrap_again(directory: Path, root_key: RootKey, signer: Signer, wrapped: bytes) -> bool:
    raw = signer._key.private_bytes_raw()
    try:
        again = root_key.wrap(raw, _AAD + signer.fingerprint.encode())
    except KeyStoreError:  # the ring refuses wraps right now: keep it as it is
        return False
    if wrapped_key_id(again) == wrapped_key_id(wrapped):
        return False
    _write_atomically(directory / KEY_FILE, _key_file(signer.fingerprint, again), replace=True)
    log.info("audit: the signing key is wrapped under the active root key now")
    return True


def _create(directory: Path, root_key: RootKey) -> Signer | None:
    """A new signing key, stored; None when another process stored one first."""
    key = Ed25519PrivateKey.generate()
    signer = Signer(fingerprint(key.public_key()), key)
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    wrapped = root_key.wrap(raw, _AAD + signer.fingerprint.encode())
    if not _write_atomically(
        directory / KEY_FILE, _key_file(signer.fingerprint, wrapped), replace=False
    ):
        return None
    _write_public_key(directory, signer.public_key)  # (``_open`` writes it if this fails)
    log.info("audit: made the digest signing key %s", signer.fingerprint)
    return signer


def _key_file(fp: str, wrapped: bytes) -> bytes:
    return orjson.dumps(
        {
            "version": 1,
            "algorithm": ALGORITHM,
            "fingerprint": fp,
            "wrapped": base64.b64encode(wrapped).decode(),
        }
    )


def _write_public_key(directory: Path, public_key: Ed25519PublicKey) -> None:
    keys = directory / PUBLIC_KEYS
    keys.mkdir(exist_ok=True, mode=0o700)  # as everything in the data directory
    path = keys / f"{fingerprint(public_key)}.pem"
    if not path.exists():
        _write_atomically(path, public_pem(public_key), replace=True)


def _write_atomically(path: Path, data: bytes, *, replace: bool, mode: int = 0o600) -> bool:
    """Write ``path`` whole or not at all, durably; with ``replace`` False, only if it does
    not exist (returns False then)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            finally:
                tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)
    return True


def sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- verifying ----------------------------------------------------------------------------


def current_public_key(directory: Path) -> tuple[str, bytes]:
    """The fingerprint and PEM of the key that signs digests now. Raises ValueError when
    the audit directory has none yet."""
    path = directory / KEY_FILE
    try:
        fp = str(orjson.loads(path.read_bytes())["fingerprint"])
        return fp, (directory / PUBLIC_KEYS / f"{fp}.pem").read_bytes()
    except (OSError, ValueError, KeyError):
        raise ValueError(
            f"no audit signing key at {path}: has a server started with this audit directory?"
        ) from None


def public_keys(directory: Path) -> dict[str, Ed25519PublicKey]:
    """Every public key in ``public-keys/``, by fingerprint (files that are not one are
    left out)."""
    keys: dict[str, Ed25519PublicKey] = {}
    folder = directory / PUBLIC_KEYS
    if folder.is_dir():
        for path in sorted(folder.glob("*.pem")):
            try:
                keys.update(load_public_keys(path.read_bytes()))
            except ValueError:
                log.warning("audit: %s is not an Ed25519 public key", path)
    return keys


def load_public_keys(pem: bytes) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 public keys of a PEM text (one or more), by fingerprint. Raises
    ValueError when it holds none."""
    keys: dict[str, Ed25519PublicKey] = {}
    marker = b"-----BEGIN PUBLIC KEY-----"
    for part in pem.split(marker)[1:]:
        key = serialization.load_pem_public_key(marker + part)
        if isinstance(key, Ed25519PublicKey):
            keys[fingerprint(key)] = key
    if not keys:
        raise ValueError("no Ed25519 public key (-----BEGIN PUBLIC KEY-----) in it")
    return keys


def signature_valid(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
