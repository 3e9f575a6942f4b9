"""Encapsulate and Decapsulate (ML-KEM, FIPS 203) with ENCAPSULATE_DECAPSULATE keys."""

from __future__ import annotations

from strongroom.crypto.specs import check_encapsulation_algorithm, check_key_spec_supported
from strongroom.domain.enums import EncapsulationAlgorithm
from strongroom.domain.models import Key
from strongroom.domain.operations import Operation
from strongroom.domain.secrets import KeyBytes
from strongroom.services.access import check_dry_run, usable_key
from strongroom.services.core import Core, RequestContext
from strongroom.services.material import current_version


def _key(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    operation: Operation,
    algorithm: EncapsulationAlgorithm,
    dry_run: bool,
) -> Key:
    key = usable_key(core, ctx, key_id, operation)
    check_key_spec_supported(key.key_spec)
    check_encapsulation_algorithm(key.key_spec, algorithm)
    check_dry_run(dry_run)
    return key


def encapsulate(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    *,
    algorithm: EncapsulationAlgorithm,
    dry_run: bool = False,
) -> tuple[Key, bytes, KeyBytes]:
    """The key, a fresh encapsulated shared secret (SharedSecretCiphertextBlob) and the
    32-byte shared secret it holds.

    Raises NotFoundException, AccessDeniedException, DisabledException,
    KMSInvalidStateException, InvalidKeyUsageException (usage, or an algorithm not of the key
    spec), DryRunOperationException.
    """
    key = _key(core, ctx, key_id, Operation.ENCAPSULATE, algorithm, dry_run)
    store, version = core.keystores.for_key(key), current_version(core, key)
    ciphertext, secret = store.encapsulate(key, version, algorithm)
    return key, ciphertext, secret


def decapsulate(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    ciphertext: bytes,
    *,
    algorithm: EncapsulationAlgorithm,
    dry_run: bool = False,
) -> tuple[Key, KeyBytes]:
    """The key and the 32-byte shared secret of ``ciphertext``.

    Raises as ``encapsulate``, then InvalidCiphertextException (no detail) when the length of
    ``ciphertext`` does not fit the key spec. Any other ciphertext, altered or made for
    another key, yields a pseudo-random secret (FIPS 203 implicit rejection; Decapsulate doc).
    """
    key = _key(core, ctx, key_id, Operation.DECAPSULATE, algorithm, dry_run)
    store, version = core.keystores.for_key(key), current_version(core, key)
    return key, store.decapsulate(key, version, ciphertext, algorithm)
