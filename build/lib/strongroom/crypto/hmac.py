"""HMAC (RFC 2104) over bytes for HMAC KMS keys: GenerateMac and VerifyMac.

KMS returns the standard, untruncated HMAC of the message (``GenerateMacResponse.Mac``
doc) and gives message digests no special handling.
"""

from __future__ import annotations

import hmac as _stdlib_hmac
from collections.abc import Callable, Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac

from strongroom.crypto.specs import check_key_spec_supported, check_mac_algorithm
from strongroom.domain.enums import KeySpec, MacAlgorithm
from strongroom.domain.secrets import KeyBytes

M = MacAlgorithm

_HASHES: Mapping[MacAlgorithm, Callable[[], hashes.HashAlgorithm]] = {
    M.HMAC_SHA_224: hashes.SHA224,
    M.HMAC_SHA_256: hashes.SHA256,
    M.HMAC_SHA_384: hashes.SHA384,
    M.HMAC_SHA_512: hashes.SHA512,
}


def generate_mac(spec: KeySpec, key: KeyBytes, message: bytes, algorithm: MacAlgorithm) -> bytes:
    """The HMAC of ``message`` under ``key``, as GenerateMac returns it.

    Raises InvalidKeyUsageException "Algorithm HMAC_SHA_256 is incompatible with key spec
    HMAC_224." when ``algorithm`` is not the spec's.
    """
    check_key_spec_supported(spec)
    check_mac_algorithm(spec, algorithm)
    h = _hmac.HMAC(key.value, _HASHES[algorithm]())
    h.update(message)
    return h.finalize()


def verify_mac(
    spec: KeySpec, key: KeyBytes, message: bytes, algorithm: MacAlgorithm, mac: bytes
) -> bool:
    """Whether ``mac`` is the HMAC of ``message``, compared in constant time. A wrong MAC is
    ``False`` (the service turns it into KMSInvalidMacException); parameter mistakes raise
    as ``generate_mac`` does."""
    return _stdlib_hmac.compare_digest(generate_mac(spec, key, message, algorithm), mac)
