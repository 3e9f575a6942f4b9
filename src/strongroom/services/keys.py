"""Key lifecycle: create, describe, list, enable, disable, describe anew."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from strongroom.authz.conditions import ContextValue
from strongroom.authz.context_keys import flag, request_tags
from strongroom.crypto.specs import check_key_spec_usage
from strongroom.domain.enums import (
    KeySpec,
    KeyState,
    KeyUsage,
    MultiRegionKeyType,
    Origin,
)
from strongroom.domain.errors import KMSInvalidStateException, NotFoundException
from strongroom.domain.ids import is_key_id, key_arn, new_key_id
from strongroom.domain.models import Key, Tag
from strongroom.domain.operations import Operation, check_state
from strongroom.domain.quotas import TAGS_PER_KEY
from strongroom.keystores.base import NewMaterial
from strongroom.services.access import (
    authorize_account,
    authorize_key,
    authorize_new_key_tags,
    bypass_context,
    requested_alias,
)
from strongroom.services.core import Core, RequestContext
from strongroom.services.custom_key_store_keys import (
    check_new_key,
    check_origin,
    not_connected,
)
from strongroom.services.external_keys import check_external_key
from strongroom.services.key_records import insert_key, new_key_record
from strongroom.services.loading import with_availability
from strongroom.services.material import material_id_of, material_source
from strongroom.services.paging import decode_moment_marker, encode_moment_marker, next_page
from strongroom.services.quotas import limit
from strongroom.services.resolve import resolve_key
from strongroom.services.validation import MAX_TAGS_PER_KEY, check_tags
from strongroom.storage.ports import Transaction


def create_key(
    core: Core,
    ctx: RequestContext,
    *,
    description: str = "",
    key_spec: KeySpec = KeySpec.SYMMETRIC_DEFAULT,
    key_usage: KeyUsage | None = None,
    origin: Origin = Origin.AWS_KMS,
    policy: str | None = None,
    tags: Sequence[Tag] = (),
    multi_region: bool = False,
    custom_key_store_id: str | None = None,
    xks_key_id: str | None = None,
    bypass_policy_lockout_safety_check: bool | None = None,
) -> Key:
    """Create a customer managed key of any key spec with fresh material, or, with origin
    EXTERNAL, without material: PendingImport until ImportKeyMaterial, or, with origin
    AWS_CLOUDHSM and ``custom_key_store_id``, a symmetric key whose material the store's
    token generates (``services.custom_key_store_keys``), or, with origin
    EXTERNAL_KEY_STORE, ``custom_key_store_id`` and ``xks_key_id``, a symmetric key whose
    blobs its external key wraps again (``services.external_keys``).
    ``bypass_policy_lockout_safety_check`` is None when the request leaves it out.

    Tags need kms:TagResource too, from the caller's identity policies.

    Raises AccessDeniedException, ValidationException (usage missing or incompatible with
    spec, in AWS's words; Origin and CustomKeyStoreId apart), UnsupportedOperationException
    (specs, origins and key stores this build cannot serve; other than symmetric or
    multi-Region keys in a custom key store), CustomKeyStoreNotFoundException,
    CustomKeyStoreInvalidStateException, CloudHsmClusterInvalidConfigurationException,
    XksKeyNotFoundException, XksKeyInvalidConfigurationException,
    XksKeyAlreadyInUseException, DependencyTimeoutException,
    MalformedPolicyDocumentException, LimitExceededException, TagException.
    """
    extra = _create_key_context(key_spec, key_usage, origin, multi_region, tags)
    extra.update(bypass_context(bypass_policy_lockout_safety_check))
    authorize_account(core, ctx, "CreateKey", extra=extra)
    key_id = new_key_id(multi_region)
    arn = key_arn(ctx.region, ctx.account, key_id)
    authorize_new_key_tags(core, ctx.caller, arn, tags)
    usage = check_key_spec_usage(key_spec, key_usage)
    check_origin(origin, custom_key_store_id, xks_key_id)
    if custom_key_store_id is not None:
        check_new_key(
            core,
            ctx,
            custom_key_store_id,
            origin=origin,
            key_spec=key_spec,
            key_usage=usage,
            multi_region=multi_region,
        )
    if policy is not None:
        # Imported here: services.policies builds on this module's change_key.
        from strongroom.services.policies import validate_key_policy

        validate_key_policy(
            core, ctx.caller, policy, arn, bypass_lockout=bool(bypass_policy_lockout_safety_check)
        )
    most = MAX_TAGS_PER_KEY
    if tags:  # the operator may have set another quota of tags
        with core.store.transaction() as tx:
            most = limit(tx, ctx.account, ctx.region, TAGS_PER_KEY)
    check_tags(tags, most=most)
    if custom_key_store_id is not None and xks_key_id is not None:
        # Last of the checks: it asks the store's proxy.
        check_external_key(core, ctx, custom_key_store_id, xks_key_id)
    key = new_key_record(
        ctx.account,
        ctx.region,
        key_id,
        key_spec=key_spec,
        key_usage=usage,
        description=description,
        policy=policy,
        created=core.clock(),
        origin=origin,
        multi_region=multi_region,
    ).evolve(custom_key_store_id=custom_key_store_id, xks_key_id=xks_key_id)
    key = store_new_key(core, key, _new_material(core, key), tags)
    ctx.resources.append(key.arn)
    return key


def store_new_key(core: Core, key: Key, material: NewMaterial | None, tags: Sequence[Tag]) -> Key:
    """Write a new key with its first ``material`` in one transaction. When that fails,
    nothing of the key stays behind: what its store made outside the database (a token
    object generated for it) is discarded again, and the error propagates."""
    try:
        with core.store.transaction() as tx:
            return insert_key(core, tx, key, material, tags)
    except BaseException:
        if material is not None:
            core.keystores.for_key(key).discard(key)
        raise


def _new_material(core: Core, key: Key) -> NewMaterial | None:
    """The first material of a new key from its store, outside any transaction (an RSA key
    takes up to a second, a token call holds the token lock); None for imported material. A
    custom key store whose token cannot be reached now is not connected for CreateKey."""
    if key.origin is Origin.EXTERNAL:
        return None
    try:
        return core.keystores.for_key(key).new_material(key)
    except KMSInvalidStateException:
        if key.custom_key_store_id is None:
            raise
        raise not_connected(key.custom_key_store_id) from None


def _create_key_context(
    key_spec: KeySpec,
    key_usage: KeyUsage | None,
    origin: Origin,
    multi_region: bool,
    tags: Sequence[Tag],
) -> dict[str, ContextValue]:
    """CreateKey's condition keys from its parameters, defaults included (AWS KMS "Condition
    keys": a condition on kms:KeySpec "works even when the parameter doesn't appear")."""
    usage = (key_usage or KeyUsage.ENCRYPT_DECRYPT).value
    context: dict[str, ContextValue] = {
        "kms:KeySpec": key_spec.value,
        "kms:CustomerMasterKeySpec": key_spec.value,
        "kms:KeyUsage": usage,
        "kms:CustomerMasterKeyUsage": usage,
        "kms:KeyOrigin": origin.value,
        "kms:MultiRegion": flag(multi_region),
    }
    if multi_region:
        context["kms:MultiRegionKeyType"] = MultiRegionKeyType.PRIMARY.value
    if tags:
        context.update(request_tags((t.key, t.value) for t in tags))
    return context


def describe_key(core: Core, ctx: RequestContext, key_id: str) -> Key:
    """The key, with a multi-Region replica's shared properties (the current material
    version) read from its primary, and its current KeyMaterialId (a cached record of
    generated material leaves it out)."""
    key = resolve_key(core, ctx, key_id)
    authorize_key(core, ctx, "DescribeKey", key, request_alias=requested_alias(key_id))
    if key.state is not KeyState.UNAVAILABLE:
        key = with_availability(core, key, probe=True)  # a token gone while connected
    source = material_source(core, key)
    material_id = source.current_material_id
    if material_id is None and source.origin is Origin.AWS_KMS and source.current_version > 0:
        material_id = material_id_of(core, source, source.current_version)  # cached record
    if source is key and material_id is key.current_material_id:
        return key
    return key.evolve(current_version=source.current_version, current_material_id=material_id)


def list_keys(
    core: Core, ctx: RequestContext, *, limit: int, marker: str | None
) -> tuple[list[Key], str | None]:
    """A page of the caller's keys in this Region and the marker of the next, if any."""
    authorize_account(core, ctx, "ListKeys")
    after = None
    if marker is not None:
        when, key_id = decode_moment_marker(marker, _KEY_MARKER, is_key_id)
        after = when, key_arn(ctx.region, ctx.account, key_id)
    with core.store.read() as tx:
        found = tx.keys.list(ctx.account, ctx.region, after=after, limit=limit + 1)
    return next_page(
        found, limit, lambda k: encode_moment_marker(_KEY_MARKER, k.creation_date, k.key_id)
    )


_KEY_MARKER = "key"


def set_enabled(core: Core, ctx: RequestContext, key_id: str, *, enabled: bool) -> Key:
    """EnableKey / DisableKey."""
    operation = Operation.ENABLE_KEY if enabled else Operation.DISABLE_KEY
    target = KeyState.ENABLED if enabled else KeyState.DISABLED
    return change_key(core, ctx, key_id, operation, lambda k: k.evolve(state=target))


def update_description(core: Core, ctx: RequestContext, key_id: str, description: str) -> Key:
    return change_key(
        core,
        ctx,
        key_id,
        Operation.UPDATE_KEY_DESCRIPTION,
        lambda k: k.evolve(description=description),
    )


def change_key(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    operation: Operation,
    update: Callable[[Key], Key],
    *,
    extra: Mapping[str, ContextValue] | None = None,
    check: Callable[[Key], None] | None = None,
) -> Key:
    """Apply ``update`` to a key in one transaction, after authorization and the key-state
    check for ``operation``; every process's cache hears of the change."""
    return change_key_in(
        core, ctx, key_id, operation, lambda _tx, k: update(k), extra=extra, check=check
    )


def locked_key(
    tx: Transaction, key: Key, operation: Operation, *, check: Callable[[Key], None] | None = None
) -> Key:
    """``key``'s record read anew in ``tx`` and locked until it ends, so that changes to one
    key take turns and each sees the last one's: NotFoundException when it is gone, then
    ``check`` (what ``operation`` refuses whatever the state), then the key-state check."""
    current = tx.keys.get(key.arn, for_update=True)
    if current is None:
        raise NotFoundException(f"Key '{key.arn}' does not exist")
    if check is not None:
        check(current)
    check_state(operation, current)
    return current


def change_key_in(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    operation: Operation,
    update: Callable[[Transaction, Key], Key],
    *,
    extra: Mapping[str, ContextValue] | None = None,
    check: Callable[[Key], None] | None = None,
) -> Key:
    """``change_key`` for an ``update`` that reads more of the database in the same
    transaction (the key row is locked first). Authorization (``extra``: the operation's own
    condition keys), then ``check`` (what the operation refuses whatever the key's state),
    then the key-state check for ``operation``."""
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, operation, key, extra=extra)
    with core.store.transaction() as tx:
        current = locked_key(tx, key, operation, check=check)
        updated = update(tx, current)
        if updated != current:
            tx.keys.update(updated)
            tx.changes.record(key.arn, core.clock())
    core.cache.invalidate(key.arn)
    return updated
