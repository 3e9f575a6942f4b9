"""Find the key a request names: key id, key ARN, alias name or alias ARN."""

from __future__ import annotations

from strongroom.domain.errors import NotFoundException
from strongroom.domain.ids import is_key_id, key_arn, parse_arn
from strongroom.domain.models import Key
from strongroom.services.core import Core, RequestContext
from strongroom.services.loading import load_key
from strongroom.services.managed import managed_key_id


def resolve_key(core: Core, ctx: RequestContext, key_id: str, *, allow_alias: bool = True) -> Key:
    """Return the key named by ``key_id`` in any form AWS accepts for the operation, noted
    among the resources the request touches.

    Raises NotFoundException with AWS's texts for malformed ids, unknown keys and
    unknown aliases, and for ARNs of another Region. Naming a predefined AWS alias of the
    caller's account (``alias/aws/s3``) creates its AWS managed key on first use.
    """
    key = find_key(core, ctx, key_id, allow_alias=allow_alias)
    ctx.resources.append(key.arn)
    return key


def find_key(core: Core, ctx: RequestContext, key_id: str, *, allow_alias: bool = True) -> Key:
    """``resolve_key`` without noting the key among the request's resources."""
    caller = ctx.caller  # ctx.account and ctx.region, without the two property calls
    account, region, name = caller.principal.account, caller.region, key_id
    if key_id.startswith("arn:"):
        arn = parse_arn(key_id)
        if arn is None or (arn.kind == "alias" and not allow_alias):
            raise NotFoundException(f"Invalid arn {key_id}")
        if arn.region != ctx.region:
            raise NotFoundException(f"Invalid arn {arn.region}")
        account, name = arn.account, arn.name
    if name.startswith("alias/"):
        if not allow_alias:
            raise NotFoundException(f"Invalid keyId {key_id}")
        name = _alias_target(core, account, region, name, own=account == ctx.account)
        return load_key(core, key_arn(region, account, name))
    named = key_arn(region, account, name)
    # A cached key's id is well formed (it came from the store): only an ARN the cache does
    # not hold needs the check (a regular expression, the most of a cached lookup's cost).
    if not core.cache.holds(named) and not is_key_id(name):
        raise NotFoundException(f"Invalid keyId '{key_id}'")
    return load_key(core, named)


def _alias_target(core: Core, account: str, region: str, name: str, *, own: bool) -> str:
    """The key id an alias names. The first use of a predefined ``alias/aws/<service>`` in
    the caller's ``own`` account creates its AWS managed key, as AWS does."""
    cached = core.cache.alias_target((account, region, name))
    if cached is not None:
        return cached
    with core.store.read() as tx:
        alias = tx.aliases.get(account, region, name)
    target = None if alias is None else alias.target_key_id
    if target is None and own:
        target = managed_key_id(core, account, region, name)
    if target is None:
        raise NotFoundException(f"Alias arn:aws:kms:{region}:{account}:{name} is not found.")
    core.cache.put_alias((account, region, name), target)
    return target
