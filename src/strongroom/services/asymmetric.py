"""Asymmetric KMS keys: GetPublicKey, and the RSAES-OAEP branch of Encrypt, Decrypt and
ReEncrypt (``services.encryption`` runs the checks every operation shares, then these)."""

from __future__ import annotations

from collections.abc import Mapping

from strongroom.crypto.specs import check_encryption_algorithm, check_rsa_plaintext
from strongroom.domain.enums import EncryptionAlgorithm, KeyUsage, SpecFamily
from strongroom.domain.errors import ValidationException
from strongroom.domain.models import Key
from strongroom.domain.operations import Operation
from strongroom.services.access import usable_key
from strongroom.services.core import Core, RequestContext
from strongroom.services.material import current_version

Context = Mapping[str, str] | None
U = KeyUsage

# The standard asymmetric algorithms have no AAD ("An encryption context is valid only for
# cryptographic operations with a symmetric encryption KMS key", Decrypt doc). AWS's text:
# the wording several KMS emulators agree on (not recorded against AWS here; verify).
CONTEXT_REFUSED = (
    "EncryptionContext is not supported when encrypting/decrypting with asymmetric CMKs."
)


def takes_raw_ciphertext(key: Key) -> bool:
    """Whether Decrypt with ``key`` named reads a raw asymmetric ciphertext (an RSA
    ENCRYPT_DECRYPT key) rather than a symmetric blob. Any other key takes the blob path, so
    a blob of another key naming, say, an HMAC key is IncorrectKeyException, as AWS answers
    (LocalStack snapshot test_error_messaging_for_invalid_keys)."""
    return key.key_spec.family is not SpecFamily.SYMMETRIC and key.key_usage is U.ENCRYPT_DECRYPT


def _check(
    key: Key, context: Context, algorithm: EncryptionAlgorithm | None
) -> EncryptionAlgorithm:
    # Leaving the algorithm out means SYMMETRIC_DEFAULT, which AWS refuses for an RSA key:
    # "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_4096." (recorded).
    chosen = algorithm or EncryptionAlgorithm.SYMMETRIC_DEFAULT
    check_encryption_algorithm(key.key_spec, chosen)
    if context:
        raise ValidationException(CONTEXT_REFUSED)
    return chosen


def check_encrypt(
    key: Key, plaintext: bytes, context: Context, algorithm: EncryptionAlgorithm | None
) -> EncryptionAlgorithm:
    """The algorithm an Encrypt under asymmetric ``key`` uses, once the request fits it.

    Raises InvalidKeyUsageException (algorithm not of the key spec, or none given),
    ValidationException (an encryption context; a plaintext over the OAEP limit:
    "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_2048 cannot encrypt data larger than 214
    bytes.").
    """
    chosen = _check(key, context, algorithm)
    check_rsa_plaintext(key.key_spec, chosen, plaintext)
    return chosen


def encrypt(core: Core, key: Key, plaintext: bytes, algorithm: EncryptionAlgorithm) -> bytes:
    """The RSAES-OAEP ciphertext, as Encrypt returns it (no header: AWS's format too)."""
    store = core.keystores.for_key(key)
    return store.rsa_encrypt(key, current_version(core, key), plaintext, algorithm)


def check_decrypt(
    key: Key, context: Context, algorithm: EncryptionAlgorithm | None
) -> EncryptionAlgorithm:
    """The algorithm a Decrypt with asymmetric ``key`` uses; raises as ``check_encrypt``."""
    return _check(key, context, algorithm)


def decrypt(core: Core, key: Key, ciphertext: bytes, algorithm: EncryptionAlgorithm) -> bytes:
    """The plaintext of an RSAES-OAEP ciphertext, made here or with the public key anywhere.
    Any ciphertext that does not decrypt is InvalidCiphertextException with no detail."""
    store = core.keystores.for_key(key)
    return store.rsa_decrypt(key, current_version(core, key), ciphertext, algorithm)


def get_public_key(core: Core, ctx: RequestContext, key_id: str) -> tuple[Key, bytes]:
    """The key and its public key as DER SubjectPublicKeyInfo.

    Raises NotFoundException, DisabledException, KMSInvalidStateException,
    InvalidKeyUsageException (HMAC key), UnsupportedOperationException (symmetric key).
    """
    key = usable_key(core, ctx, key_id, Operation.GET_PUBLIC_KEY)
    return key, core.keystores.for_key(key).public_key(key, current_version(core, key))
