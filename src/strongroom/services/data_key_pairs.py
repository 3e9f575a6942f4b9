"""GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext: a fresh key pair whose
private key comes back sealed under a symmetric encryption KMS key."""

from __future__ import annotations

from dataclasses import dataclass, field

from strongroom.crypto.asymmetric_keys import generate_data_key_pair as new_pair
from strongroom.crypto.specs import data_key_pair_key_spec
from strongroom.domain.enums import DataKeyPairSpec
from strongroom.domain.operations import Operation
from strongroom.domain.secrets import KeyBytes
from strongroom.services.access import check_dry_run, refuse_recipient, usable_key
from strongroom.services.core import Core, RequestContext
from strongroom.services.encryption import Context, Sealed, algorithm_context, seal_under


@dataclass(frozen=True, slots=True)
class DataKeyPair:
    """The pair: its private key (PKCS#8 DER) in the clear and sealed, its public key (DER
    SubjectPublicKeyInfo)."""

    private_key: KeyBytes = field(repr=False)
    sealed_private_key: Sealed
    public_key: bytes


def generate_data_key_pair(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    key_pair_spec: DataKeyPairSpec,
    *,
    context: Context = None,
    recipient: bool = False,
    dry_run: bool = False,
    operation: Operation = Operation.GENERATE_DATA_KEY_PAIR,
) -> DataKeyPair:
    """A fresh data key pair of ``key_pair_spec``; its private key is sealed under the
    symmetric encryption key ``key_id`` with ``context`` as AAD, so Decrypt returns it.
    Condition keys: kms:DataKeyPairSpec, kms:EncryptionAlgorithm (SYMMETRIC_DEFAULT).

    Raises NotFoundException, DisabledException, KMSInvalidStateException,
    InvalidKeyUsageException (not a symmetric encryption key), UnsupportedOperationException
    (a pair spec this build cannot make, Recipient), DryRunOperationException.
    """
    extra = algorithm_context(None)
    extra["kms:DataKeyPairSpec"] = key_pair_spec.value
    key = usable_key(core, ctx, key_id, operation, encryption_context=context, extra=extra)
    data_key_pair_key_spec(key_pair_spec)
    refuse_recipient(recipient)
    check_dry_run(dry_run)
    private, public = new_pair(key_pair_spec)
    return DataKeyPair(private, seal_under(core, key, private.value, context), public)
