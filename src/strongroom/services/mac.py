"""GenerateMac and VerifyMac with HMAC keys."""

from __future__ import annotations

from strongroom.authz.conditions import ContextValue
from strongroom.crypto.specs import check_mac_algorithm
from strongroom.domain.enums import MacAlgorithm
from strongroom.domain.errors import KMSInvalidMacException
from strongroom.domain.models import Key
from strongroom.domain.operations import Operation
from strongroom.services.access import check_dry_run, usable_key
from strongroom.services.core import Core, RequestContext
from strongroom.services.material import current_version


def _context(algorithm: MacAlgorithm) -> dict[str, ContextValue]:
    """kms:MacAlgorithm."""
    return {"kms:MacAlgorithm": algorithm.value}


def generate_mac(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    message: bytes,
    *,
    algorithm: MacAlgorithm,
    dry_run: bool = False,
) -> tuple[Key, bytes]:
    """The key and the HMAC of ``message`` under it.

    Raises NotFoundException, DisabledException, KMSInvalidStateException,
    InvalidKeyUsageException (usage; "Algorithm HMAC_SHA_256 is incompatible with key spec
    HMAC_224."), DryRunOperationException.
    """
    key = usable_key(core, ctx, key_id, Operation.GENERATE_MAC, extra=_context(algorithm))
    check_mac_algorithm(key.key_spec, algorithm)
    check_dry_run(dry_run)
    store, version = core.keystores.for_key(key), current_version(core, key)
    return key, store.generate_mac(key, version, message, algorithm)


def verify_mac(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    message: bytes,
    mac: bytes,
    *,
    algorithm: MacAlgorithm,
    dry_run: bool = False,
) -> Key:
    """The key, when ``mac`` is the HMAC of ``message`` under it (compared in constant time).

    A wrong MAC is KMSInvalidMacException with an empty message, as AWS answers; the other
    errors as ``generate_mac``.
    """
    key = usable_key(core, ctx, key_id, Operation.VERIFY_MAC, extra=_context(algorithm))
    check_mac_algorithm(key.key_spec, algorithm)
    check_dry_run(dry_run)
    store, version = core.keystores.for_key(key), current_version(core, key)
    if not store.verify_mac(key, version, message, algorithm, mac):
        raise KMSInvalidMacException()
    return key
