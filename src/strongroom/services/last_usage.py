"""GetKeyLastUsage: a key's last successful cryptographic use (``services.key_usage``)."""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.domain.models import Key
from strongroom.domain.operations import Operation, check_state
from strongroom.services.access import authorize_key
from strongroom.services.core import Core, RequestContext
from strongroom.services.key_usage import LastUse, last_use
from strongroom.services.resolve import resolve_key


@dataclass(frozen=True, slots=True)
class KeyLastUsage:
    key: Key
    last: LastUse


def get_key_last_usage(core: Core, ctx: RequestContext, key_id: str) -> KeyLastUsage:
    """GetKeyLastUsage of the key ``key_id`` names by key id or key ARN ("Alias names are
    not supported"). Raises NotFoundException, AccessDeniedException."""
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, Operation.GET_KEY_LAST_USAGE, key)
    check_state(Operation.GET_KEY_LAST_USAGE, key)
    return KeyLastUsage(key, last_use(core, key))
