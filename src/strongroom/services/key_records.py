"""A new key's record and its first material, the same for CreateKey, seeding and the first
use of an AWS managed key.

Apart from ``services.keys`` because that module resolves key ids, and resolving
``alias/aws/<service>`` creates an AWS managed key (``services.managed``): this module
imports neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from strongroom.authz.policy import default_key_policy
from strongroom.domain.enums import KeyManager, KeySpec, KeyState, KeyUsage, Origin
from strongroom.domain.ids import key_arn
from strongroom.domain.models import Key, Tag
from strongroom.keystores.base import NewMaterial
from strongroom.services.core import Core
from strongroom.services.material import add_generated_version
from strongroom.services.quotas import check_key_count
from strongroom.storage.ports import Transaction


def default_policy(account: str) -> str:
    """The key policy AWS attaches when CreateKey has none (KMS Developer Guide,
    "Default key policy"): the account root may do everything, which lets IAM
    policies grant access."""
    return default_key_policy(account)


def new_key_record(
    account: str,
    region: str,
    key_id: str,
    *,
    key_spec: KeySpec,
    key_usage: KeyUsage,
    description: str,
    policy: str | None,
    created: datetime,
    enabled: bool = True,
    origin: Origin = Origin.AWS_KMS,
    multi_region: bool = False,
    key_manager: KeyManager = KeyManager.CUSTOMER,
) -> Key:
    """The record of a new key (customer managed unless ``key_manager`` says otherwise),
    still without material (``insert_key`` adds it); ``policy`` None means the default key
    policy. A key of origin EXTERNAL waits in PendingImport; a multi-Region key is the
    primary of its set."""
    if origin is Origin.EXTERNAL:
        state = KeyState.PENDING_IMPORT
    else:
        state = KeyState.ENABLED if enabled else KeyState.DISABLED
    return Key(
        arn=key_arn(region, account, key_id),
        account=account,
        region=region,
        state=state,
        description=description,
        key_usage=key_usage,
        key_spec=key_spec,
        origin=origin,
        key_manager=key_manager,
        multi_region=multi_region,
        policy=policy if policy is not None else default_policy(account),
        creation_date=created,
        current_version=0,
        primary_region=region if multi_region else None,
    )


def insert_key(
    core: Core,
    tx: Transaction,
    key: Key,
    material: NewMaterial | None,
    tags: Sequence[Tag],
    *,
    count_checked: bool = False,
) -> Key:
    """Store a new key in ``tx``: its record, its ``material`` (made by the key's store;
    None: imported later) as version 1, and its tags; returns the stored record. The
    caller has checked the policy and the tags. Raises LimitExceededException when a
    customer managed key exceeds its account's quota of keys in the Region (then ``tx``
    must roll back: the key is in it), unless ``count_checked``: the caller checks the
    count once, after the last of the keys it inserts in ``tx``
    (``quotas.check_key_count``)."""
    tx.keys.insert(key)
    if key.key_manager is KeyManager.CUSTOMER and not count_checked:
        check_key_count(tx, key)
    if material is not None:
        key = add_generated_version(core, tx, key, material, key.creation_date)
        tx.keys.update(key)
    if tags:
        tx.tags.put(key.arn, tags)
    return key
