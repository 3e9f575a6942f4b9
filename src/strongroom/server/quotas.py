"""Request quotas: token buckets per (caller's account, Region, quota), as AWS KMS throttles.

A request over a quota's rate fails with ThrottlingException, AWS's text, HTTP 400: every
SDK's retry logic knows it as throttling. Cross-account requests count against the
caller's account (AWS, "Request quotas": cross-account requests).

How processes share a quota (setting ``quota_sharing``; ``bench/README.md`` "Session 8"
has the measurements):

* ``local``: each process alone with an exact bucket of the whole rate. The default for one
  worker on SQLite, where the process is alone.
* ``lease``: the default otherwise (several workers, or PostgreSQL, which several nodes
  may share). A shared bucket per quota lives in the database (``quota_buckets``); each
  process takes tokens from it in leases of RATE x LEASE_SECONDS tokens, in a thread of its
  own, before its local tokens run out. A request waits for the database only when its
  process holds no token at all; a process never takes more than the shared bucket holds,
  so all processes together admit at most the rate (plus one second's burst).
* ``split``: each process an exact bucket of rate / workers (no database; nodes beyond
  one are not counted). Kept to measure against.

Only this module and the pipeline's one call know of it; the catalog is
``domain/quotas.py`` and the operator's values ``services/quotas.py``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from strongroom.domain import quotas as catalog
from strongroom.domain.enums import Origin
from strongroom.domain.errors import KmsError, ThrottlingException
from strongroom.domain.lru import LruDict
from strongroom.domain.models import Caller, Key
from strongroom.domain.quotas import Quota
from strongroom.services.core import Core, RequestContext
from strongroom.services.quotas import peek_key
from strongroom.services.resolve import find_key

log = logging.getLogger("strongroom.server")

THROTTLED = (
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
)
"""AWS KMS's ThrottlingException message (KMS Developer Guide, "Request quotas")."""

LEASE_SECONDS = 0.05
"""A lease holds this many seconds of a quota's rate (at least one token)."""

MODES = ("auto", "local", "lease", "split")
MAX_BUCKETS = 100_000  # (account, Region, quota) buckets and routes a process keeps

# The parameter that names the key whose class a cryptographic request counts against.
_KEY_PARAM = {"ReEncrypt": "DestinationKeyId"}


@dataclass(frozen=True, slots=True)
class _Charge:
    """One bucket a request takes ``cost`` tokens from."""

    bucket: str  # the quota's name, with "/<store id>" for a custom key store's
    quota: Quota
    cost: int
    region: str | None = None  # another Region's bucket (ReplicateKey's CreateKey)


class _Bucket:
    """The tokens this process holds of one (account, Region, bucket)."""

    __slots__ = ("capacity", "empty_until", "leasing", "rate", "stamp", "tokens", "version")

    def __init__(self) -> None:
        self.rate = 0.0
        self.capacity = 0.0
        self.tokens = 0.0
        self.stamp = time.monotonic()
        self.version = -1  # the operator values' version the rate was read at
        self.leasing: asyncio.Future[int] | None = None
        self.empty_until = 0.0  # lease mode: the shared bucket was empty; ask again then


_Name = tuple[str, str, str]  # a bucket's (account, Region, bucket)
_Held = tuple[tuple[_Name, _Bucket, _Charge], ...]
# The buckets of a request, with the number of buckets the table had let go when it was
# found: a route found before the table let one go may hold a bucket no longer in the table
# (whose name a new bucket may have taken), so its buckets are found anew by name.
_Route = tuple[int, _Held]
_NO_ROUTE = object()  # a request whose buckets are found anew each time


def _selector(operation: str, params: dict[str, Any], crypto: bool) -> object:
    """What, beside the caller and the operation, decides which buckets a request takes
    from: a cryptographic request's key id or key ARN (its spec and store never change; an
    alias may be moved to another key, so a request by alias has no route), the
    KeyPairSpec, GenerateRandom's CustomKeyStoreId; None for everything else."""
    if crypto:
        key_id = params.get(_KEY_PARAM.get(operation, "KeyId"))
        if key_id is None or (isinstance(key_id, str) and "alias/" not in key_id):
            store = params.get("CustomKeyStoreId") if operation == "GenerateRandom" else None
            return key_id if store is None else (key_id, store)
        return _NO_ROUTE
    if operation.startswith("GenerateDataKeyPair"):
        spec = params.get("KeyPairSpec")
        return spec if isinstance(spec, str) else _NO_ROUTE
    if operation == "ReplicateKey":
        there = params.get("ReplicaRegion")
        return there if isinstance(there, str) else _NO_ROUTE
    return None


class RequestQuotas:
    """The request buckets of one process: ``admit`` before dispatching each request."""

    def __init__(self, core: Core, *, enabled: bool, mode: str, workers: int, sqlite: bool) -> None:
        if mode == "auto":
            mode = "local" if workers == 1 and sqlite else "lease"
        self.core = core
        self.enabled = enabled
        self.mode = mode
        self._share = 1.0 / workers if mode == "split" else 1.0
        # Full, the table lets its least recently used bucket go, one at a time: a caller's
        # bucket in use is never reset by other callers' coming (only the event loop's
        # thread reads and writes the tables).
        self._buckets: LruDict[_Name, _Bucket] = LruDict(MAX_BUCKETS)
        self._let_go = 0  # buckets the table let go so far
        self._pool: ThreadPoolExecutor | None = None
        # (account, Region, operation, what else decides the buckets) -> the buckets' names.
        # Full, the oldest route goes (a hit does not renew it: that would cost every
        # request): a route in use that goes is found again at its next request.
        self._routes: LruDict[tuple[str, str, str, object], _Route] = LruDict(MAX_BUCKETS)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Read the operator's values (before serving: the request path never reads them)."""
        self.core.quota_values.reload(self.core.store)
        if self.enabled and self.mode == "lease":
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="quota")

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the request path ---------------------------------------------------------------

    def admit(
        self, caller: Caller, operation: str, params: dict[str, Any]
    ) -> Awaitable[None] | None:
        """None when the request may go on; ThrottlingException when it is over a quota; an
        awaitable when the answer needs a thread (the request's key is not cached yet, or,
        in lease mode, this process holds no token of the quota): await it, it raises
        ThrottlingException or returns."""
        if not self.enabled:
            return None
        account, region = caller.principal.account, caller.region
        crypto = operation in catalog.CRYPTO_OPERATIONS
        selector = _selector(operation, params, crypto)
        if selector is not _NO_ROUTE:  # the buckets of requests like this one, found before
            found = (account, region, operation, selector)
            route = self._routes.get(found)
            if route is not None:
                if route[0] != self._let_go:  # found before the table let a bucket go
                    held = self._held(account, region, route[1])
                    route = self._routes[found] = (self._let_go, held)
                return self._take(account, region, route)
        key = None
        if crypto:
            key_id = params.get(_KEY_PARAM.get(operation, "KeyId"))
            if isinstance(key_id, str):
                key = peek_key(self.core.cache, account, region, key_id)
                if key is None:
                    return self._admit_after_loading(caller, operation, params, key_id)
        route = self._route(account, region, operation, params, key)
        if selector is not _NO_ROUTE:
            self._routes.keep((account, region, operation, selector), route)
        return self._take(account, region, route)

    async def _admit_after_loading(
        self, caller: Caller, operation: str, params: dict[str, Any], key_id: str
    ) -> None:
        """``admit`` for a key not in the cache: load it in a thread (the handler finds it
        cached then). A key that cannot be found counts as symmetric; the handler answers."""
        loop = asyncio.get_running_loop()
        key = await loop.run_in_executor(self._pool, _find, self.core, caller, key_id)
        account, region = caller.principal.account, caller.region
        route = self._route(account, region, operation, params, key)
        pending = self._take(account, region, route)
        if pending is not None:
            await pending

    def _route(
        self, account: str, region: str, operation: str, params: dict[str, Any], key: Key | None
    ) -> _Route:
        """The buckets (and what each request takes of them) of a request of ``operation``
        on ``key`` by ``account`` in ``region``."""
        names = [
            ((account, charge.region or region, charge.bucket), charge)
            for charge in _charges(operation, params, key)
        ]
        held = self._held(account, region, names)
        return self._let_go, held  # counted after: finding a bucket may let one go

    def _held(self, account: str, region: str, names: list[tuple[_Name, _Charge]] | _Held) -> _Held:
        """The buckets of these names in the table (made anew where it holds none: first
        used, or let go as the least recently used), each now the most recently used."""
        buckets = self._buckets
        held = []
        for name, *_, charge in names:
            bucket = buckets.hit(name)
            if bucket is None:
                bucket = _Bucket()  # full, as AWS's are (lease mode: empty until a lease)
                self._refresh(bucket, account, region, charge, fresh=True)
                if len(buckets) >= buckets.max_entries:
                    self._let_go += 1
                buckets.keep(name, bucket)
            held.append((name, bucket, charge))
        return tuple(held)

    def _refresh(
        self, bucket: _Bucket, account: str, region: str, charge: _Charge, *, fresh: bool = False
    ) -> None:
        """Give ``bucket`` its quota's current value (the operator's values changed)."""
        region = charge.region or region
        values = self.core.quota_values
        # The version first: ``reload`` (in a thread) replaces the values before it counts
        # the version up, so these values are at least as new as the version kept.
        version = values.version
        rate = values.value(account, region, charge.quota) * self._share
        bucket.rate, bucket.version = rate, version
        bucket.capacity = max(rate, float(charge.cost))  # one second's burst
        if self.mode != "lease":  # a new exact bucket starts full, as AWS's do
            bucket.tokens = bucket.capacity if fresh else min(bucket.tokens, bucket.capacity)
        else:  # tokens leased at an older rate: no more than a lease at the new one
            bucket.tokens = min(bucket.tokens, float(_lease_size(bucket)))

    def _take(self, account: str, region: str, route: _Route) -> Awaitable[None] | None:
        version = self.core.quota_values.version
        exact = self.mode != "lease"
        now = time.monotonic()
        enough = True
        held = route[1]  # current: admit finds a route anew after the table let a bucket go
        buckets = self._buckets
        for name, bucket, charge in held:
            buckets.move_to_end(name)  # now the most recently used (LruDict.hit, no call)
            if bucket.version != version:
                self._refresh(bucket, account, region, charge)
            if exact:  # an exact bucket refills by itself
                tokens = bucket.tokens + (now - bucket.stamp) * bucket.rate
                bucket.tokens = tokens if tokens < bucket.capacity else bucket.capacity
                bucket.stamp = now
            if bucket.tokens < charge.cost:
                enough = False
        if enough:
            for _, bucket, charge in held:
                bucket.tokens -= charge.cost
                if not exact:
                    self._prefetch(account, region, charge, bucket)
            return None
        if exact:
            raise ThrottlingException(THROTTLED)
        return self._take_after_lease(account, region, held)

    async def _take_after_lease(self, account: str, region: str, held: _Held) -> None:
        for _, bucket, charge in held:
            if bucket.tokens < charge.cost:
                if time.monotonic() < bucket.empty_until:
                    raise ThrottlingException(THROTTLED)
                await self._lease(account, region, charge, bucket)
        if any(bucket.tokens < charge.cost for _, bucket, charge in held):
            raise ThrottlingException(THROTTLED)
        for _, bucket, charge in held:
            bucket.tokens -= charge.cost

    # -- leases (lease mode) ------------------------------------------------------------

    def _prefetch(self, account: str, region: str, charge: _Charge, bucket: _Bucket) -> None:
        """Take the next lease in the background when this process is down to half of one."""
        low = bucket.tokens < _lease_size(bucket) / 2
        if low and bucket.leasing is None and time.monotonic() >= bucket.empty_until:
            self._start_lease(account, region, charge, bucket)

    async def _lease(self, account: str, region: str, charge: _Charge, bucket: _Bucket) -> None:
        """Wait for a lease into ``bucket``: the one under way, or a new one."""
        leasing = bucket.leasing or self._start_lease(account, region, charge, bucket)
        await asyncio.shield(leasing)

    def _start_lease(
        self, account: str, region: str, charge: _Charge, bucket: _Bucket
    ) -> asyncio.Future[int]:
        """Take a lease from the shared bucket into ``bucket`` in a thread; one at a time per
        bucket (``bucket.leasing`` is set at once, before the loop runs the thread's task)."""
        loop = asyncio.get_running_loop()
        leasing = bucket.leasing = loop.run_in_executor(
            self._pool,
            self._take_shared,
            account,
            charge.region or region,
            charge.bucket,
            bucket,
        )

        def done(future: asyncio.Future[int]) -> None:
            bucket.leasing = None
            if future.cancelled() or future.exception() is not None:
                if not future.cancelled():
                    log.error(
                        "taking a lease of a request quota failed", exc_info=future.exception()
                    )
                return
            got = future.result()
            bucket.tokens += got
            if got == 0:  # the shared bucket holds less than a token: not before one refills
                bucket.empty_until = time.monotonic() + 1.0 / max(bucket.rate, 1e-9) / 2

        leasing.add_done_callback(done)
        return leasing

    def _take_shared(self, account: str, region: str, name: str, bucket: _Bucket) -> int:
        with self.core.store.transaction() as tx:
            return tx.quotas.take(
                account,
                region,
                name,
                rate=bucket.rate,
                capacity=bucket.capacity,
                want=_lease_size(bucket),
                now=time.time(),
            )


def _lease_size(bucket: _Bucket) -> int:
    return max(1, min(int(bucket.capacity), math.ceil(bucket.rate * LEASE_SECONDS)))


def _find(core: Core, caller: Caller, key_id: str) -> Key | None:
    try:
        return find_key(core, RequestContext(caller, "quota"), key_id)
    except KmsError:
        return None


def _charges(operation: str, params: dict[str, Any], key: Key | None) -> list[_Charge]:
    """The buckets one request of ``operation`` on ``key`` takes tokens from: its request
    quotas, and for a key in a custom key store (or GenerateRandom in one) that store's."""
    family = None if key is None else key.key_spec.family
    spec = params.get("KeyPairSpec")
    cost = catalog.REQUEST_COST.get(operation, 1)
    out = [
        _Charge(q.name, q, cost)
        for q in catalog.request_quotas_of(
            operation, family, spec if isinstance(spec, str) else None
        )
    ]
    there = params.get("ReplicaRegion") if operation == "ReplicateKey" else None
    if isinstance(there, str):  # and two CreateKey requests in the replica's Region
        create = catalog.OPERATION["CreateKey"]
        out.append(_Charge(create.name, create, 2, there))
    store = _store_quota(operation, params, key)
    if store is not None:
        quota, store_id = store
        out.append(_Charge(f"{quota.name}/{store_id}", quota, catalog.STORE_COST.get(operation, 1)))
    return out


def _store_quota(
    operation: str, params: dict[str, Any], key: Key | None
) -> tuple[Quota, str] | None:
    if key is not None and key.custom_key_store_id is not None:
        external = key.origin is Origin.EXTERNAL_KEY_STORE
        quota = catalog.EXTERNAL_KEY_STORE if external else catalog.CLOUDHSM_KEY_STORE
        return quota, key.custom_key_store_id
    store_id = params.get("CustomKeyStoreId") if operation == "GenerateRandom" else None
    if isinstance(store_id, str):
        # Both store types share the id space; GenerateRandom in a store is charged to the
        # CloudHSM quota (external key stores cannot generate random bytes).
        return catalog.CLOUDHSM_KEY_STORE, store_id
    return None
