"""DeriveSharedSecret: ECDH between a KEY_AGREEMENT key and a peer's public key."""

from __future__ import annotations

from strongroom.crypto.specs import check_key_agreement_algorithm
from strongroom.domain.enums import KeyAgreementAlgorithm
from strongroom.domain.models import Key
from strongroom.domain.operations import Operation
from strongroom.domain.secrets import KeyBytes
from strongroom.services.access import check_dry_run, refuse_recipient, usable_key
from strongroom.services.core import Core, RequestContext
from strongroom.services.material import current_version


def derive_shared_secret(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    public_key: bytes,
    *,
    algorithm: KeyAgreementAlgorithm,
    recipient: bool = False,
    dry_run: bool = False,
) -> tuple[Key, KeyBytes]:
    """The key and the raw ECDH shared secret of its private key and ``public_key`` (the
    peer's DER SubjectPublicKeyInfo, on the same curve).

    Raises NotFoundException, DisabledException, KMSInvalidStateException,
    InvalidKeyUsageException (usage, algorithm), UnsupportedOperationException (Recipient),
    DryRunOperationException, then ValidationException for a peer key that is not a DER
    SPKI of the key's curve.
    """
    extra = {"kms:KeyAgreementAlgorithm": algorithm.value}
    key = usable_key(core, ctx, key_id, Operation.DERIVE_SHARED_SECRET, extra=extra)
    check_key_agreement_algorithm(key.key_spec, algorithm)
    refuse_recipient(recipient)
    check_dry_run(dry_run)
    store, version = core.keystores.for_key(key), current_version(core, key)
    return key, store.derive_shared_secret(key, version, public_key, algorithm)
