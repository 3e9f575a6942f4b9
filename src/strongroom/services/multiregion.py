"""Multi-Region keys: ReplicateKey, UpdatePrimaryRegion, the related keys of a set, and the
job that finishes replication.

A set of related multi-Region keys shares one ``mrk-`` key id in several Regions of one
account (AWS KMS Developer Guide, "Multi-Region keys in AWS KMS"). Every key of the set
stores the Region of the current primary (``Key.primary_region``). Shared properties (key
spec, usage, origin, automatic rotation, generated material) come from the primary: a
replica of generated material has no material rows of its own and reads every version
through its primary (``services.material.material_source``; its key store reads the
primary's rows), so a version the primary gains later is at once usable in every Region.
Imported material is each key's own (``services.mrk_material``): a replica of such a
primary starts without it. Description, policy, tags, aliases and key state belong to each
key.

ReplicateKey answers with the replica in the ``Creating`` state, as AWS does; the scheduled
``complete_replication`` job makes it ``Enabled`` (``PendingImport`` for imported material)
within one change-poll interval (AWS: "after a few seconds"). Until then it can be managed
but not used in cryptographic operations (KMSInvalidStateException "... is creating."), so
a client that replicates and uses the key at once sees here what it would see on AWS and
must wait for ``Enabled``. UpdatePrimaryRegion completes at once: the transient ``Updating``
state of AWS is skipped; the new primary takes over the set's rotation schedule and its
material history (ListKeyRotations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from strongroom.domain.enums import KeyState, MultiRegionKeyType, Origin
from strongroom.domain.errors import (
    AlreadyExistsException,
    NotFoundException,
    UnsupportedOperationException,
)
from strongroom.domain.ids import key_arn, lock_order
from strongroom.domain.models import Key, Tag
from strongroom.domain.operations import Operation, check_state
from strongroom.services.access import authorize_account, authorize_key, authorize_new_key_tags
from strongroom.services.core import Core, RequestContext
from strongroom.services.key_records import default_policy
from strongroom.services.loading import load_key
from strongroom.services.material import copy_versions
from strongroom.services.mrk_material import mirror_versions, sync_set
from strongroom.services.policies import validate_key_policy
from strongroom.services.quotas import check_key_count
from strongroom.services.resolve import resolve_key
from strongroom.services.validation import check_tags
from strongroom.storage.ports import Transaction


def _check_primary(key: Key) -> None:
    """UnsupportedOperationException with AWS's text unless ``key`` is a multi-Region primary."""
    if key.multi_region_type is not MultiRegionKeyType.PRIMARY:
        raise UnsupportedOperationException(f"{key.arn} is not a multi-region primary key.")


def replica_regions(core: Core, key: Key) -> tuple[str, ...]:
    """The Regions of the replica keys in ``key``'s set, in Region order; () for a
    single-Region key. Cached per process; every change to a set reaches the cache of each
    of its keys through the change feed."""
    if key.primary_region is None:
        return ()
    found = core.cache.replica_regions(key.arn)
    if found is None:
        with core.store.read() as tx:
            related = tx.keys.related(key.account, key.key_id)
        found = tuple(
            k.region for k in related if k.multi_region_type is MultiRegionKeyType.REPLICA
        )
        core.cache.put_replica_regions(key.arn, found)
    return found


def replicate_key(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    replica_region: str,
    *,
    policy: str | None = None,
    bypass_policy_lockout_safety_check: bool = False,
    description: str = "",
    tags: Sequence[Tag] = (),
) -> Key:
    """ReplicateKey: a replica of a multi-Region primary key in ``replica_region``, in the
    Creating state, with its own policy (the default one when None), description and tags.

    Needs kms:ReplicateKey on the primary (kms:ReplicaRegion in the context), kms:CreateKey
    in the replica Region, and kms:TagResource on the replica when ``tags`` are given (both
    from identity policies; aws:RequestTag/<k> and aws:TagKeys are the tags). Raises
    NotFoundException, AccessDeniedException, UnsupportedOperationException (not a primary
    key), DisabledException, KMSInvalidStateException, AlreadyExistsException (a related
    key is in that Region already), MalformedPolicyDocumentException, TagException.
    """
    primary = resolve_key(core, ctx, key_id, allow_alias=False)
    extra = {"kms:ReplicaRegion": replica_region}
    authorize_key(core, ctx, "ReplicateKey", primary, extra=extra)
    _check_primary(primary)
    check_state(Operation.REPLICATE_KEY, primary)
    there = dataclasses.replace(ctx.caller, region=replica_region)
    authorize_account(
        core,
        ctx,
        "CreateKey",
        extra={"kms:MultiRegion": "true", "kms:MultiRegionKeyType": MultiRegionKeyType.REPLICA},
        caller=there,
    )
    arn = key_arn(replica_region, primary.account, primary.key_id)
    authorize_new_key_tags(core, there, arn, tags)
    if policy is not None:
        validate_key_policy(
            core, there, policy, arn, bypass_lockout=bypass_policy_lockout_safety_check
        )
    check_tags(tags)
    now = core.clock()
    with core.store.transaction() as tx:
        related = tx.keys.related(primary.account, primary.key_id, for_update=True)
        current = _in_region(related, primary.region, primary.arn)
        _check_primary(current)
        check_state(Operation.REPLICATE_KEY, current)
        if any(k.region == replica_region for k in related):
            raise AlreadyExistsException(f"Key '{arn}' already exists")
        replica = current.evolve(
            arn=arn,
            region=replica_region,
            state=KeyState.CREATING,
            description=description,
            policy=policy if policy is not None else default_policy(primary.account),
            creation_date=now,
            deletion_date=None,
            pending_window_days=None,
            expiration_model=None,  # imported material: the replica's own imports set it
            valid_to=None,
        )
        tx.keys.insert(replica)
        check_key_count(tx, replica)  # the replica is a customer managed key too
        mirror_versions(tx, current, arn)
        sync_set(tx, current)
        tx.tags.put(arn, tags)
        _record_changes(tx, related, now)
    _forget(core, related)
    ctx.resources.append(arn)
    return replica


def update_primary_region(
    core: Core, ctx: RequestContext, key_id: str, primary_region: str
) -> None:
    """UpdatePrimaryRegion: the replica in ``primary_region`` becomes the primary key and
    the current primary one of its replicas, at once.

    Needs kms:UpdatePrimaryRegion on both keys (kms:PrimaryRegion in the context). Raises
    NotFoundException (no related key in that Region), AccessDeniedException,
    UnsupportedOperationException (not a primary key, or its own Region),
    DisabledException, KMSInvalidStateException.
    """
    primary = resolve_key(core, ctx, key_id, allow_alias=False)
    condition = {"kms:PrimaryRegion": primary_region}
    authorize_key(core, ctx, "UpdatePrimaryRegion", primary, extra=condition)
    _check_primary(primary)
    check_state(Operation.UPDATE_PRIMARY_REGION, primary)
    if primary_region == primary.region:
        raise UnsupportedOperationException(
            f"{primary.arn} is already the primary key in {primary_region}."
        )
    replica = load_key(core, key_arn(primary_region, primary.account, primary.key_id))
    ctx.resources.append(replica.arn)
    there = dataclasses.replace(ctx.caller, region=primary_region)
    authorize_key(core, ctx, "UpdatePrimaryRegion", replica, extra=condition, caller=there)
    check_state(Operation.UPDATE_PRIMARY_REGION, replica)
    now = core.clock()
    with core.store.transaction() as tx:
        related = tx.keys.related(primary.account, primary.key_id, for_update=True)
        old = _in_region(related, primary.region, primary.arn)
        new = _in_region(related, primary_region, replica.arn)
        _check_primary(old)
        check_state(Operation.UPDATE_PRIMARY_REGION, old)
        check_state(Operation.UPDATE_PRIMARY_REGION, new)
        for key in related:
            tx.keys.update(_under_new_primary(key, old, primary_region))
        if old.origin is Origin.EXTERNAL:
            sync_set(tx, new)  # each key keeps its own imported material
        else:
            # The new primary gets rows of its own for every version and the material
            # history; the old one keeps its rows, so a process that still reads through it
            # finds every version too.
            versions = range(1, old.current_version + 1)
            core.keystores.for_key(old).copy_material(tx, old, new, versions, now)
            copy_versions(tx, old.arn, new.arn)
        _record_changes(tx, related, now)
    _forget(core, related)


def _under_new_primary(key: Key, old: Key, primary_region: str) -> Key:
    """A key of the set once the primary is in ``primary_region``: the set's automatic
    rotation schedule, and its current version of generated material, are the old
    primary's (shared properties, "Multi-Region keys in AWS KMS")."""
    key = key.evolve(
        primary_region=primary_region,
        rotation_period_days=old.rotation_period_days,
        next_rotation_date=old.next_rotation_date,
    )
    if old.origin is Origin.EXTERNAL:
        return key
    return key.evolve(
        current_version=old.current_version, current_material_id=old.current_material_id
    )


def complete_replication(core: Core) -> int:
    """Move every replica in the Creating state to Enabled, or PendingImport when its
    material is imported (the scheduled job that stands for AWS's asynchronous
    replication); returns how many it moved."""
    creating = core.store.keys_in_state(KeyState.CREATING)
    if not creating:
        return 0
    now = core.clock()
    done: list[str] = []
    with core.store.transaction() as tx:
        for arn in sorted(creating, key=lock_order):  # the sets in the order all lock them
            key = tx.keys.get(arn, for_update=True)
            if key is not None and key.state is KeyState.CREATING:
                imported = key.origin is Origin.EXTERNAL
                state = KeyState.PENDING_IMPORT if imported else KeyState.ENABLED
                tx.keys.update(key.evolve(state=state))
                tx.changes.record(arn, now)
                done.append(arn)
    for arn in done:
        core.cache.invalidate(arn)
    return len(done)


def _in_region(related: Sequence[Key], region: str, arn: str) -> Key:
    for key in related:
        if key.region == region:
            return key
    raise NotFoundException(f"Key '{arn}' does not exist")


def _record_changes(tx: Transaction, related: Sequence[Key], now: datetime) -> None:
    for key in related:
        tx.changes.record(key.arn, now)


def _forget(core: Core, related: Sequence[Key]) -> None:
    for key in related:
        core.cache.invalidate(key.arn)
