"""Symmetric cryptography: Encrypt, Decrypt, ReEncrypt, data keys and random bytes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from strongroom.authz.decision import authorize
from strongroom.crypto.blob import open_blob, parse_blob, seal
from strongroom.crypto.context import encode_context
from strongroom.domain.enums import DataKeySpec, EncryptionAlgorithm, KeySpec
from strongroom.domain.errors import (
    DryRunOperationException,
    IncorrectKeyException,
    InvalidCiphertextException,
    InvalidKeyUsageException,
    NotFoundException,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.domain.ids import key_arn
from strongroom.domain.keystate import check_state
from strongroom.domain.models import Key
from strongroom.domain.usage import check_usage
from strongroom.services.core import Core, RequestContext
from strongroom.services.material import symmetric_aead
from strongroom.services.resolve import load_key, resolve_key

Context = Mapping[str, str] | None
DATA_KEY_BYTES = {DataKeySpec.AES_128: 16, DataKeySpec.AES_256: 32}


@dataclass(frozen=True, slots=True)
class Sealed:
    key: Key
    ciphertext: bytes
    version: int


@dataclass(frozen=True, slots=True)
class Opened:
    key: Key
    plaintext: bytes
    version: int


def _dry_run() -> DryRunOperationException:
    return DryRunOperationException(
        "The request would have succeeded, but the DryRun option is set."
    )


def _usable(core: Core, ctx: RequestContext, key_id: str, operation: str, action: str) -> Key:
    key = resolve_key(core, ctx, key_id)
    authorize(ctx.caller, action, key)
    check_state(operation, key)
    check_usage(operation, key)
    return key


def _check_algorithm(key: Key, algorithm: EncryptionAlgorithm | None) -> None:
    if (
        algorithm not in (None, EncryptionAlgorithm.SYMMETRIC_DEFAULT)
        and key.key_spec is KeySpec.SYMMETRIC_DEFAULT
    ):
        raise InvalidKeyUsageException(
            f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}."
        )


def _seal(core: Core, key: Key, plaintext: bytes, context: Context) -> Sealed:
    version = key.current_version
    aead = symmetric_aead(core, key, version)
    blob = seal(aead, key.account, key.key_id, version, plaintext, encode_context(context))
    return Sealed(key, blob, version)


def encrypt(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    plaintext: bytes,
    *,
    context: Context = None,
    algorithm: EncryptionAlgorithm | None = None,
    dry_run: bool = False,
    operation: str = "Encrypt",
) -> Sealed:
    """Encrypt up to 4096 bytes under a symmetric key. Raises NotFoundException,
    DisabledException, KMSInvalidStateException, InvalidKeyUsageException."""
    key = _usable(core, ctx, key_id, operation, operation)
    _check_algorithm(key, algorithm)
    if dry_run:
        raise _dry_run()
    return _seal(core, key, plaintext, context)


def decrypt(
    core: Core,
    ctx: RequestContext,
    ciphertext: bytes,
    *,
    context: Context = None,
    key_id: str | None = None,
    algorithm: EncryptionAlgorithm | None = None,
    dry_run: bool = False,
    action: str = "Decrypt",
) -> Opened:
    """Decrypt a blob made by Encrypt or GenerateDataKey*. A blob of another key than
    ``key_id`` names is IncorrectKeyException; a changed blob or a different context is
    InvalidCiphertextException."""
    blob = parse_blob(ciphertext)
    named = resolve_key(core, ctx, key_id) if key_id is not None else None
    arn = key_arn(ctx.region, blob.account, blob.key_id)
    if named is not None and named.arn != arn:
        raise IncorrectKeyException(
            "The key ID in the request does not identify a CMK that can perform this operation."
        )
    try:
        key = named or load_key(core, arn)
    except NotFoundException:  # a blob naming no key is not a ciphertext of ours
        raise InvalidCiphertextException() from None
    if named is None:
        ctx.resources.append(key.arn)
    authorize(ctx.caller, action, key)
    check_state("Decrypt", key)
    check_usage("Decrypt", key)
    _check_algorithm(key, algorithm)
    if dry_run:
        raise _dry_run()
    aead = symmetric_aead(core, key, blob.material_version)
    return Opened(key, open_blob(aead, blob, encode_context(context)), blob.material_version)


def re_encrypt(
    core: Core,
    ctx: RequestContext,
    ciphertext: bytes,
    destination_key_id: str,
    *,
    source_context: Context = None,
    destination_context: Context = None,
    source_key_id: str | None = None,
    source_algorithm: EncryptionAlgorithm | None = None,
    destination_algorithm: EncryptionAlgorithm | None = None,
    dry_run: bool = False,
) -> tuple[Opened, Sealed]:
    """Decrypt under the source key and encrypt under the destination, plaintext never leaving."""
    opened = decrypt(
        core,
        ctx,
        ciphertext,
        context=source_context,
        key_id=source_key_id,
        algorithm=source_algorithm,
        action="ReEncryptFrom",
    )
    key = _usable(core, ctx, destination_key_id, "ReEncrypt", "ReEncryptTo")
    _check_algorithm(key, destination_algorithm)
    if dry_run:
        raise _dry_run()
    return opened, _seal(core, key, opened.plaintext, destination_context)


def generate_data_key(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    *,
    key_spec: DataKeySpec | None,
    number_of_bytes: int | None,
    context: Context = None,
    dry_run: bool = False,
    operation: str = "GenerateDataKey",
) -> tuple[bytes, Sealed]:
    """A fresh data key and its copy encrypted under the KMS key; exactly one of
    ``key_spec`` and ``number_of_bytes`` must be given (ValidationException otherwise)."""
    if (key_spec is None) == (number_of_bytes is None):
        raise ValidationException(
            "Please specify either number of bytes or key spec."
            if key_spec is None
            else "Please specify only one of number of bytes or key spec, not both."
        )
    key = _usable(core, ctx, key_id, operation, operation)
    if dry_run:
        raise _dry_run()
    size = DATA_KEY_BYTES[key_spec] if key_spec is not None else number_of_bytes
    assert size is not None
    plaintext = os.urandom(size)
    return plaintext, _seal(core, key, plaintext, context)


def generate_random(
    ctx: RequestContext, number_of_bytes: int | None, custom_key_store_id: str | None
) -> bytes:
    """GenerateRandom: 1-1024 bytes from the operating system's CSPRNG."""
    authorize(ctx.caller, "GenerateRandom")
    if number_of_bytes is None:
        raise ValidationException("NumberOfBytes is required.")
    if custom_key_store_id is not None:
        raise UnsupportedOperationException(
            "Custom key stores are not supported by this server yet."
        )
    return os.urandom(number_of_bytes)
