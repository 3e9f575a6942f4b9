"""Encrypt, Decrypt, ReEncrypt, data keys and random bytes.

Symmetric encryption keys are the hot path and run here; an asymmetric (RSA) key takes one
branch into ``services.asymmetric`` after the checks every key passes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from strongroom.authz.conditions import ContextValue
from strongroom.authz.context_keys import flag
from strongroom.crypto.blob import (
    FORMAT_EXTERNAL,
    FORMAT_TOKEN,
    FORMAT_V1,
    check_format,
    open_blob,
    parse_blob,
    seal,
)
from strongroom.crypto.context import encode_context
from strongroom.domain.enums import DataKeySpec, EncryptionAlgorithm, Origin, SpecFamily
from strongroom.domain.errors import (
    IncorrectKeyException,
    InvalidCiphertextException,
    InvalidKeyUsageException,
    NotFoundException,
    ValidationException,
)
from strongroom.domain.ids import key_arn
from strongroom.domain.models import Key
from strongroom.domain.operations import Operation, check_state, check_usage
from strongroom.services import asymmetric
from strongroom.services.access import (
    authorize_account,
    authorize_key,
    check_dry_run,
    requested_alias,
    usable_key,
)
from strongroom.services.core import Core, RequestContext
from strongroom.services.custom_key_store_keys import random_in_store
from strongroom.services.loading import load_key
from strongroom.services.material import current_version
from strongroom.services.resolve import find_key, resolve_key

Context = Mapping[str, str] | None
DATA_KEY_BYTES = {DataKeySpec.AES_128: 16, DataKeySpec.AES_256: 32}


SYMMETRIC = EncryptionAlgorithm.SYMMETRIC_DEFAULT

# kms:EncryptionAlgorithm: the algorithm the operation uses, SYMMETRIC_DEFAULT when the
# request names none (AWS KMS "Condition keys": it works "even when the algorithm isn't
# specified in the request"; data key operations always use SYMMETRIC_DEFAULT).
ALGORITHM_CONTEXT: Mapping[EncryptionAlgorithm, Mapping[str, ContextValue]] = {
    a: {"kms:EncryptionAlgorithm": a.value} for a in EncryptionAlgorithm
}


def algorithm_context(algorithm: EncryptionAlgorithm | None) -> dict[str, ContextValue]:
    """kms:EncryptionAlgorithm of a request naming ``algorithm`` (or none)."""
    return dict(ALGORITHM_CONTEXT[algorithm or SYMMETRIC])


# Not frozen: one is made per request, and a frozen dataclass's __init__ costs ~5x as much
# (object.__setattr__ per field). Nothing assigns to one after it is made.
@dataclass(slots=True, unsafe_hash=True)
class Sealed:
    """A ciphertext and what made it; ``version`` is None for an asymmetric key (its
    ciphertext names no material version)."""

    key: Key
    ciphertext: bytes
    version: int | None
    algorithm: EncryptionAlgorithm = SYMMETRIC


# Not frozen: one is made per request, and a frozen dataclass's __init__ costs ~5x as much
# (object.__setattr__ per field). Nothing assigns to one after it is made.
@dataclass(slots=True, unsafe_hash=True)
class Opened:
    """A plaintext and what opened it; ``version`` as in ``Sealed``."""

    key: Key
    plaintext: bytes
    version: int | None
    algorithm: EncryptionAlgorithm = SYMMETRIC


def _check_algorithm(key: Key, algorithm: EncryptionAlgorithm | None) -> None:
    if (
        algorithm not in (None, EncryptionAlgorithm.SYMMETRIC_DEFAULT)
        and key.key_spec.family is SpecFamily.SYMMETRIC
    ):
        raise InvalidKeyUsageException(
            f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}."
        )


def seal_under(core: Core, key: Key, plaintext: bytes, context: Context) -> Sealed:
    """A symmetric blob of ``plaintext`` under the current material of symmetric ``key``,
    with ``context`` as AAD (no checks: the caller made them)."""
    version = current_version(core, key)
    encrypt = partial(core.keystores.for_key(key).encrypt, key, version)
    aad = encode_context(context)
    blob = seal(encrypt, key.account, key.key_id, version, plaintext, aad, blob_format(key))
    return Sealed(key, blob, version)


def blob_format(key: Key) -> int:
    """The format byte of ``key``'s blobs: which kind of store runs its AES-GCM."""
    if key.custom_key_store_id is None:
        return FORMAT_V1
    return FORMAT_EXTERNAL if key.origin is Origin.EXTERNAL_KEY_STORE else FORMAT_TOKEN


def encrypt(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    plaintext: bytes,
    *,
    context: Context = None,
    algorithm: EncryptionAlgorithm | None = None,
    dry_run: bool = False,
    operation: Operation = Operation.ENCRYPT,
) -> Sealed:
    """Encrypt up to 4096 bytes under a symmetric key, or up to the RSAES-OAEP limit under
    an RSA key. Raises NotFoundException, DisabledException, KMSInvalidStateException,
    InvalidKeyUsageException, ValidationException (asymmetric limits and context)."""
    key = usable_key(
        core,
        ctx,
        key_id,
        operation,
        encryption_context=context,
        extra=ALGORITHM_CONTEXT[algorithm or SYMMETRIC],
    )
    if key.key_spec.family is not SpecFamily.SYMMETRIC:
        return _encrypt_asymmetric(core, key, plaintext, context, algorithm, dry_run)
    _check_algorithm(key, algorithm)
    check_dry_run(dry_run)
    return seal_under(core, key, plaintext, context)


def _encrypt_asymmetric(
    core: Core,
    key: Key,
    plaintext: bytes,
    context: Context,
    algorithm: EncryptionAlgorithm | None,
    dry_run: bool,
) -> Sealed:
    chosen = asymmetric.check_encrypt(key, plaintext, context, algorithm)
    check_dry_run(dry_run)
    return Sealed(key, asymmetric.encrypt(core, key, plaintext, chosen), None, chosen)


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
    destination_key_id: str | None = None,
) -> Opened:
    """Decrypt a blob made by Encrypt or GenerateDataKey*, or, when ``key_id`` names an RSA
    key, an RSAES-OAEP ciphertext. A blob of another key than ``key_id`` names is
    IncorrectKeyException; a changed blob or a different context is
    InvalidCiphertextException. ``destination_key_id`` is ReEncrypt's, for
    kms:ReEncryptOnSameKey."""
    named = resolve_key(core, ctx, key_id) if key_id is not None else None
    if named is not None and asymmetric.takes_raw_ciphertext(named):
        return _decrypt_asymmetric(
            core, ctx, named, ciphertext, context, algorithm, dry_run, action, destination_key_id
        )
    blob = parse_blob(ciphertext)
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
    authorize_key(
        core,
        ctx,
        action,
        key,
        encryption_context=context,
        request_alias=None if key_id is None else requested_alias(key_id),
        extra=_decrypt_context(core, ctx, key, algorithm, destination_key_id),
    )
    check_state(Operation.DECRYPT, key)
    check_usage(Operation.DECRYPT, key)
    _check_algorithm(key, algorithm)
    check_dry_run(dry_run)
    check_format(blob, blob_format(key))
    version = blob.material_version
    decrypt_with = partial(core.keystores.for_key(key).decrypt, key, version)
    return Opened(key, open_blob(decrypt_with, blob, encode_context(context)), version)


def _decrypt_asymmetric(
    core: Core,
    ctx: RequestContext,
    key: Key,
    ciphertext: bytes,
    context: Context,
    algorithm: EncryptionAlgorithm | None,
    dry_run: bool,
    action: str,
    destination_key_id: str | None,
) -> Opened:
    extra = _decrypt_context(core, ctx, key, algorithm, destination_key_id)
    authorize_key(core, ctx, action, key, encryption_context=context, extra=extra)
    check_state(Operation.DECRYPT, key)
    check_usage(Operation.DECRYPT, key)
    chosen = asymmetric.check_decrypt(key, context, algorithm)
    check_dry_run(dry_run)
    return Opened(key, asymmetric.decrypt(core, key, ciphertext, chosen), None, chosen)


def _decrypt_context(
    core: Core,
    ctx: RequestContext,
    key: Key,
    algorithm: EncryptionAlgorithm | None,
    destination_key_id: str | None,
) -> Mapping[str, ContextValue]:
    """Decrypt's condition keys; ReEncrypt's (``destination_key_id`` set) add
    kms:ReEncryptOnSameKey, whether the destination key is the source key."""
    if destination_key_id is None:
        return ALGORITHM_CONTEXT[algorithm or SYMMETRIC]
    context = algorithm_context(algorithm)
    destination = find_key(core, ctx, destination_key_id)
    context["kms:ReEncryptOnSameKey"] = flag(destination.arn == key.arn)
    return context


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
    """Decrypt under the source key and encrypt under the destination, plaintext never
    leaving; either key may be symmetric or RSA (an RSA source needs ``source_key_id`` and
    ``source_algorithm``, an RSA destination ``destination_algorithm``)."""
    opened = decrypt(
        core,
        ctx,
        ciphertext,
        context=source_context,
        key_id=source_key_id,
        algorithm=source_algorithm,
        action="ReEncryptFrom",
        destination_key_id=destination_key_id,
    )
    extra = algorithm_context(destination_algorithm)
    same = find_key(core, ctx, destination_key_id).arn == opened.key.arn
    extra["kms:ReEncryptOnSameKey"] = flag(same)
    key = usable_key(
        core,
        ctx,
        destination_key_id,
        Operation.RE_ENCRYPT,
        "ReEncryptTo",
        encryption_context=destination_context,
        extra=extra,
    )
    if key.key_spec.family is not SpecFamily.SYMMETRIC:
        sealed = _encrypt_asymmetric(
            core, key, opened.plaintext, destination_context, destination_algorithm, dry_run
        )
        return opened, sealed
    _check_algorithm(key, destination_algorithm)
    check_dry_run(dry_run)
    return opened, seal_under(core, key, opened.plaintext, destination_context)


def generate_data_key(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    *,
    key_spec: DataKeySpec | None,
    number_of_bytes: int | None,
    context: Context = None,
    dry_run: bool = False,
    operation: Operation = Operation.GENERATE_DATA_KEY,
) -> tuple[bytes, Sealed]:
    """A fresh data key and its copy encrypted under the KMS key; exactly one of
    ``key_spec`` and ``number_of_bytes`` must be given (ValidationException otherwise)."""
    if (key_spec is None) == (number_of_bytes is None):
        raise ValidationException(
            "Please specify either number of bytes or key spec."
            if key_spec is None
            else "Please specify only one of number of bytes or key spec, not both."
        )
    key = usable_key(
        core, ctx, key_id, operation, encryption_context=context, extra=ALGORITHM_CONTEXT[SYMMETRIC]
    )
    check_dry_run(dry_run)
    size = DATA_KEY_BYTES[key_spec] if key_spec is not None else number_of_bytes
    assert size is not None
    plaintext = os.urandom(size)
    return plaintext, seal_under(core, key, plaintext, context)


def generate_random(
    core: Core, ctx: RequestContext, number_of_bytes: int | None, custom_key_store_id: str | None
) -> bytes:
    """GenerateRandom: 1-1024 bytes from the operating system's CSPRNG, or from the token of
    the custom key store ``custom_key_store_id`` names."""
    authorize_account(core, ctx, "GenerateRandom")
    if number_of_bytes is None:
        raise ValidationException("NumberOfBytes is required.")
    if custom_key_store_id is not None:
        return random_in_store(core, ctx, custom_key_store_id, number_of_bytes)
    return os.urandom(number_of_bytes)
