"""What every custom key store operation reads and checks: the caller's store, its name
in the account and Region, the quota, and the change feed entry that makes every process
drop what it keeps of a store."""

from __future__ import annotations

from strongroom.domain.errors import (
    CustomKeyStoreNameInUseException,
    CustomKeyStoreNotFoundException,
    LimitExceededException,
)
from strongroom.domain.models import CustomKeyStore
from strongroom.domain.quotas import CUSTOM_KEY_STORES
from strongroom.services.core import Core, RequestContext
from strongroom.services.quotas import limit
from strongroom.services.store_tokens import store_change_name
from strongroom.storage.ports import Transaction


def not_found(store_id: str) -> CustomKeyStoreNotFoundException:
    """CustomKeyStoreNotFoundException for a store of another account or Region, or none."""
    return CustomKeyStoreNotFoundException(
        f"Custom key store {store_id} does not exist in this account and Region."
    )


def get_store(
    tx: Transaction, ctx: RequestContext, store_id: str, *, for_update: bool = False
) -> CustomKeyStore:
    """The caller's account's and Region's store ``store_id``, or CustomKeyStoreNotFound."""
    store = tx.custom_key_stores.get(store_id, for_update=for_update)
    if store is None or store.account != ctx.account or store.region != ctx.region:
        raise not_found(store_id)
    return store


def check_name_free(tx: Transaction, account: str, region: str, name: str) -> None:
    """Raises CustomKeyStoreNameInUseException when a store of the account and Region has
    the name."""
    if tx.custom_key_stores.get_by_name(account, region, name) is not None:
        raise CustomKeyStoreNameInUseException(
            f"The custom key store name {name} is already in use in this account and Region."
        )


def record_change(tx: Transaction, core: Core, store_id: str) -> None:
    """Every process drops what it keeps of the store (its token session, its XKS client)
    within one change poll."""
    tx.changes.record(store_change_name(store_id), core.clock())


def check_quota(tx: Transaction, core: Core, ctx: RequestContext) -> None:
    """Raises LimitExceededException when the account has as many custom key stores (of
    either type) in the Region as it may have."""
    most = limit(tx, ctx.account, ctx.region, CUSTOM_KEY_STORES, core.custom_key_stores_per_account)
    if tx.custom_key_stores.count(ctx.account, ctx.region) >= most:
        raise LimitExceededException(
            f"The account already has {most} custom key stores in this Region, the "
            "most it can have."
        )
