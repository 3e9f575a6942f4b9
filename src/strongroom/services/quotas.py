"""The operator's quota values (``strongroom admin quota``) over AWS's defaults, and the
resource quotas that read them."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Protocol

from strongroom.domain import quotas as catalog
from strongroom.domain.errors import LimitExceededException
from strongroom.domain.ids import is_key_id, key_arn
from strongroom.domain.models import Key
from strongroom.domain.quotas import Quota
from strongroom.storage.ports import Store, Transaction

EVERY_ACCOUNT = "*"
"""The account of a value that holds for every account without one of its own."""

CHANGE_NAME = "strongroom:quotas"
"""What the change feed names when the operator's values change: every process reloads them."""


@dataclass(frozen=True, slots=True)
class QuotaSetting:
    """A quota as ``admin quota list`` shows it for one account and Region."""

    quota: Quota
    value: float
    default: float
    source: str  # "default", "every account" or "account"


class QuotaValues:
    """The operator's values as this process last read them, for the request quotas:
    ``reload`` reads them (at start, and off the event loop on the change feed's poll);
    ``value`` never touches the database. Resource quotas read theirs in their transaction
    (``limit``)."""

    def __init__(self) -> None:
        self._values: Mapping[tuple[str, str], float] = MappingProxyType({})
        self._lock = threading.Lock()
        self.version = 0  # counts reloads, so request buckets know to look again

    def reload(self, store: Store) -> None:
        with store.read() as tx:
            rows = tx.quotas.values()
        with self._lock:
            self._values = MappingProxyType({(a, n): v for a, n, v in rows})
            self.version += 1

    def value(self, account: str, region: str, quota: Quota) -> float:
        """The quota's value for ``account`` in ``region``: the account's own, else the
        one for every account, else AWS's default."""
        return self.setting(account, region, quota)[0]

    def setting(self, account: str, region: str, quota: Quota) -> tuple[float, str]:
        """The value and where it comes from (``QuotaSetting.source``)."""
        values = self._values
        own = None if account == EVERY_ACCOUNT else values.get((account, quota.name))
        if own is not None:
            return own, "account"
        every = values.get((EVERY_ACCOUNT, quota.name))
        if every is not None:
            return every, "every account"
        return quota.default_in(region), "default"


def limit(
    tx: Transaction, account: str, region: str, quota: Quota, configured: int | None = None
) -> int:
    """A resource quota's value for an account in a Region, read in ``tx`` (exact at once,
    and in the transaction that counts the resources): the operator's (``admin quota set``;
    the account's own, else the one for every account), else ``configured`` (a server
    setting, such as ``grants_per_key``), else AWS's default."""
    value = tx.quotas.value_for(account, quota.name)
    if value is not None:
        return int(value)
    return configured if configured is not None else int(quota.default_in(region))


def find_quota(name: str) -> Quota:
    """The quota of Service Quotas name ``name``; ValueError naming it and how to list them."""
    quota = catalog.ALL.get(name)
    if quota is None:
        raise ValueError(
            f"unknown quota {name!r}: `strongroom admin quota list` shows every quota's name"
        )
    return quota


def list_quotas(values: QuotaValues, account: str, region: str) -> list[QuotaSetting]:
    """Every quota with its value for ``account`` in ``region``."""
    out = []
    for quota in catalog.ALL.values():
        value, source = values.setting(account, region, quota)
        out.append(QuotaSetting(quota, value, quota.default_in(region), source))
    return out


def set_quota(store: Store, account: str, name: str, value: float, now: float) -> Quota:
    """Set an adjustable quota's value for ``account`` ("*": every account); every process
    applies it within one change poll. ValueError for an unknown name, a quota AWS does not
    let anyone adjust, or a value out of range."""
    quota = check_setting(name, value)
    with store.transaction() as tx:
        tx.quotas.put_value(account, name, value, now)
        _record(tx, now)
    return quota


def check_setting(name: str, value: float) -> Quota:
    """The quota ``name`` if it may be set to ``value``; ValueError naming the quota and
    the rule otherwise (unknown name, not adjustable, value out of range)."""
    quota = find_quota(name)
    if not quota.adjustable:
        raise ValueError(f"quota {name!r} is not adjustable (AWS fixes it at {quota.default:g})")
    catalog.check_value(quota, value)
    return quota


def reset_quota(store: Store, account: str, name: str, now: float) -> bool:
    """Forget the value set for ``account`` ("*": every account): the quota has its default
    again (or, for an account, the value for every account). Whether there was one."""
    find_quota(name)
    with store.transaction() as tx:
        removed = tx.quotas.delete_value(account, name)
        if removed:
            _record(tx, now)
    return removed


def _record(tx: Transaction, now: float) -> None:
    tx.changes.record(CHANGE_NAME, datetime.fromtimestamp(now, UTC))


def check_key_count(tx: Transaction, key: Key) -> None:
    """LimitExceededException when ``key``'s account has more customer managed keys in its
    Region than it may have (AWS managed keys do not count), ``key`` among them: it is
    called after ``tx`` stored ``key`` (the last of the keys ``tx`` creates in its account
    and Region), so that the count it reads is the one this transaction commits. The
    store counts as it inserts (``QuotaRepository.customer_managed_keys``); on PostgreSQL
    the count's row stays locked until ``tx`` ends, so CreateKeys of one account and
    Region, on any node, see each other's keys and the quota holds exactly."""
    most = limit(tx, key.account, key.region, catalog.KMS_KEYS)
    if tx.quotas.customer_managed_keys(key.account, key.region) > most:
        raise LimitExceededException(
            f"The request was rejected because a quota was exceeded: account {key.account} "
            f"already has {most} customer managed KMS keys in {key.region}, the most it can "
            "have (quota 'AWS KMS keys')."
        )


class KeyLookup(Protocol):
    """What ``peek_key`` needs of the key cache (``services.cache.KeyCache``)."""

    def key(self, arn: str) -> Key | None: ...

    def alias_target(self, alias: tuple[str, str, str]) -> str | None: ...


def peek_key(cached: KeyLookup, account: str, region: str, key_id: str) -> Key | None:
    """The key ``key_id`` names (key id, key ARN, alias name or alias ARN) if the key cache
    has it, without touching the database; None otherwise."""
    if key_id.startswith("arn:aws:kms:"):
        parts = key_id.split(":", 5)
        if len(parts) != 6 or parts[3] != region:
            return None
        account, key_id = parts[4], parts[5]
        if key_id.startswith("key/"):
            key_id = key_id[4:]
    if key_id.startswith("alias/"):
        target = cached.alias_target((account, region, key_id))
        if target is None:
            return None
        key_id = target
    if not is_key_id(key_id):
        return None
    return cached.key(key_arn(region, account, key_id))
