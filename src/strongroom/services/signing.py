"""Sign and Verify with asymmetric SIGN_VERIFY keys."""

from __future__ import annotations

from strongroom.authz.conditions import ContextValue
from strongroom.crypto.specs import check_signing_message
from strongroom.domain.enums import MessageType, SigningAlgorithm
from strongroom.domain.errors import KMSInvalidSignatureException
from strongroom.domain.models import Key
from strongroom.domain.operations import Operation
from strongroom.services.access import check_dry_run, usable_key
from strongroom.services.core import Core, RequestContext
from strongroom.services.material import current_version


def _context(algorithm: SigningAlgorithm, message_type: MessageType) -> dict[str, ContextValue]:
    """kms:SigningAlgorithm and kms:MessageType (RAW when the request names none)."""
    return {"kms:SigningAlgorithm": algorithm.value, "kms:MessageType": message_type.value}


def sign(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    message: bytes,
    *,
    algorithm: SigningAlgorithm,
    message_type: MessageType = MessageType.RAW,
    dry_run: bool = False,
) -> tuple[Key, bytes]:
    """The key and the signature of ``message`` (or of the digest it is, for DIGEST).

    Raises NotFoundException, DisabledException, KMSInvalidStateException,
    InvalidKeyUsageException (usage, or an algorithm not of the key spec),
    ValidationException (message type; "Digest is invalid length for algorithm X."),
    UnsupportedOperationException (Ed25519ph and ML-DSA external mu), DryRunOperationException.
    """
    key = usable_key(core, ctx, key_id, Operation.SIGN, extra=_context(algorithm, message_type))
    check_signing_message(key.key_spec, algorithm, message_type, message)
    check_dry_run(dry_run)
    store, version = core.keystores.for_key(key), current_version(core, key)
    return key, store.sign(key, version, message, message_type, algorithm)


def verify(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    message: bytes,
    signature: bytes,
    *,
    algorithm: SigningAlgorithm,
    message_type: MessageType = MessageType.RAW,
    dry_run: bool = False,
) -> Key:
    """The key, when ``signature`` is ``algorithm``'s signature of ``message`` under it.

    A signature that does not verify is KMSInvalidSignatureException with an empty message,
    as AWS answers; the other errors as ``sign``.
    """
    key = usable_key(core, ctx, key_id, Operation.VERIFY, extra=_context(algorithm, message_type))
    check_signing_message(key.key_spec, algorithm, message_type, message)
    check_dry_run(dry_run)
    store, version = core.keystores.for_key(key), current_version(core, key)
    if not store.verify(key, version, message, message_type, algorithm, signature):
        raise KMSInvalidSignatureException()
    return key
