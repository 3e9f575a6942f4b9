"""Aliases: friendly names for keys, unique per account and Region."""

from __future__ import annotations

import re

from strongroom.domain.errors import (
    AlreadyExistsException,
    LimitExceededException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from strongroom.domain.ids import alias_arn
from strongroom.domain.models import Alias, Key
from strongroom.domain.operations import Operation
from strongroom.domain.quotas import ALIASES_PER_KEY
from strongroom.services.access import authorize_account, authorize_key
from strongroom.services.core import Core, RequestContext
from strongroom.services.keys import locked_key
from strongroom.services.managed import PredefinedAlias, with_predefined
from strongroom.services.paging import decode_marker, encode_marker, next_page
from strongroom.services.quotas import limit
from strongroom.services.resolve import resolve_key
from strongroom.services.validation import constraint_error
from strongroom.storage.ports import Transaction

MAX_ALIASES_PER_KEY = 50
_PREFIX = "alias/"
_RESERVED = "alias/aws/"
_NAME_PATTERN = "^[a-zA-Z0-9:/_-]+$"  # AliasNameType in the KMS model, 1-256 characters
_NAME_RE = re.compile(_NAME_PATTERN, re.ASCII)
_MAX_NAME = 256


def check_alias_name(name: str) -> None:
    """AWS's rules for an alias name (``AliasNameType`` and the ``CreateAlias`` doc): the
    model's pattern and length (which the wire codec checks first), the ``alias/`` prefix,
    and ``alias/aws/`` reserved. Raises ValidationException or NotAuthorizedException."""
    if not _NAME_RE.fullmatch(name):
        raise constraint_error(
            "aliasName", name, f"Member must satisfy regular expression pattern: {_NAME_PATTERN}"
        )
    if len(name) > _MAX_NAME:
        raise constraint_error(
            "aliasName", name, f"Member must have length less than or equal to {_MAX_NAME}"
        )
    if not name.startswith(_PREFIX):
        raise ValidationException(
            'Alias must start with the prefix "alias/". Please see '
            "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
        )
    if name == _PREFIX:
        raise ValidationException('Alias name must have at least one character after "alias/".')
    if name.startswith(_RESERVED):
        raise NotAuthorizedException(
            f"{name}: aliases that begin with alias/aws/ are reserved for AWS managed keys."
        )


def _get_alias(core: Core, ctx: RequestContext, name: str) -> Alias:
    with core.store.read() as tx:
        alias = tx.aliases.get(ctx.account, ctx.region, name)
    if alias is None:
        raise NotFoundException(f"Alias {alias_arn(ctx.region, ctx.account, name)} is not found.")
    return alias


def create_alias(core: Core, ctx: RequestContext, name: str, target_key_id: str) -> Alias:
    """CreateAlias. Raises ValidationException / NotAuthorizedException for bad names,
    AlreadyExistsException, LimitExceededException (50 aliases a key), NotFoundException."""
    check_alias_name(name)
    key = resolve_key(core, ctx, target_key_id, allow_alias=False)
    authorize_key(core, ctx, "CreateAlias", key)
    now = core.clock()
    arn = alias_arn(ctx.region, ctx.account, name)
    alias = Alias(arn, name, ctx.account, ctx.region, key.key_id, now, now)
    with core.store.transaction() as tx:
        # The key's row held until the alias commits: another CreateAlias for the key waits
        # and counts this one (as the key's deletion waits, and takes it along).
        locked_key(tx, key, Operation.CREATE_ALIAS)
        if tx.aliases.get(ctx.account, ctx.region, name) is not None:
            raise AlreadyExistsException(f"An alias with the name {arn} already exists")
        _check_room(tx, ctx, key)
        tx.aliases.insert(alias)
        tx.changes.record(arn, now)
    core.cache.invalidate(arn)
    ctx.resources.append(arn)
    return alias


def update_alias(core: Core, ctx: RequestContext, name: str, target_key_id: str) -> Alias:
    """UpdateAlias: point an alias at another key of the same type and usage."""
    check_alias_name(name)
    old = _get_alias(core, ctx, name)
    current = resolve_key(core, ctx, old.target_key_id, allow_alias=False)
    key = resolve_key(core, ctx, target_key_id, allow_alias=False)
    # kms:UpdateAlias on the key the alias leaves and on the key it goes to.
    authorize_key(core, ctx, "UpdateAlias", current)
    authorize_key(core, ctx, "UpdateAlias", key)
    _check_same_type(current, key)
    now = core.clock()
    alias = Alias(old.arn, name, old.account, old.region, key.key_id, old.creation_date, now)
    with core.store.transaction() as tx:
        # The new key's row held until the alias commits, as CreateAlias holds it.
        locked_key(tx, key, Operation.UPDATE_ALIAS)
        if old.target_key_id != key.key_id:
            _check_room(tx, ctx, key)
        tx.aliases.update(alias)
        tx.changes.record(alias.arn, now)
    core.cache.invalidate(alias.arn)
    ctx.resources.append(alias.arn)
    return alias


def _check_room(tx: Transaction, ctx: RequestContext, key: Key) -> None:
    """LimitExceededException when ``key`` has all the aliases a key may have (50)."""
    most = limit(tx, ctx.account, ctx.region, ALIASES_PER_KEY)
    if tx.aliases.count(ctx.account, ctx.region, key.key_id) >= most:
        raise LimitExceededException(
            f"Key {key.arn} already has {most} aliases, the most a key can have."
        )


def _check_same_type(current: Key, new: Key) -> None:
    if (current.key_spec, current.key_usage) != (new.key_spec, new.key_usage):
        raise ValidationException(
            f"{new.arn} has key spec {new.key_spec} and key usage {new.key_usage}; the alias "
            f"must keep pointing at a key with key spec {current.key_spec} and key usage "
            f"{current.key_usage}."
        )


def delete_alias(core: Core, ctx: RequestContext, name: str) -> None:
    check_alias_name(name)
    alias = _get_alias(core, ctx, name)
    ctx.resources.append(alias.arn)
    # kms:DeleteAlias on the alias and on its key ("Controlling access to aliases").
    authorize_account(core, ctx, "DeleteAlias")
    key = resolve_key(core, ctx, alias.target_key_id, allow_alias=False)
    authorize_key(core, ctx, "DeleteAlias", key)
    now = core.clock()
    with core.store.transaction() as tx:
        tx.aliases.delete(alias)
        tx.changes.record(alias.arn, now)
    core.cache.invalidate(alias.arn)


def list_aliases(
    core: Core, ctx: RequestContext, *, key_id: str | None, limit: int, marker: str | None
) -> tuple[list[Alias | PredefinedAlias], str | None]:
    """A page of the account's aliases in this Region (of one key when ``key_id`` is given),
    the predefined AWS aliases whose AWS managed key does not exist yet included."""
    authorize_account(core, ctx, "ListAliases")
    target = None
    if key_id is not None:
        target = resolve_key(core, ctx, key_id, allow_alias=False).key_id
    after = None if marker is None else decode_marker(marker, _ALIAS_MARKER, _alias_name)
    with core.store.read() as tx:
        stored = tx.aliases.list(
            ctx.account, ctx.region, key_id=target, after=after, limit=limit + 1
        )
    page: list[Alias | PredefinedAlias] = [*stored]
    if target is None:
        page = with_predefined(stored, ctx.account, ctx.region, after=after, limit=limit + 1)
    return next_page(page, limit, lambda a: encode_marker(_ALIAS_MARKER, a.name))


_ALIAS_MARKER = "alias"


def _alias_name(fields: str) -> str:
    if not fields.startswith(_PREFIX):
        raise ValueError(fields)
    return fields
