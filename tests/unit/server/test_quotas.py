"""The request buckets of server/quotas.py in process, over a real core and SQLite
database: an exact bucket for a process alone, leases from one shared bucket for processes
that share a quota (two RequestQuotas on one database stand for two workers), and a split
of the rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.domain.errors import ThrottlingException
from strongroom.domain.models import Caller, Principal
from strongroom.server.quotas import THROTTLED, RequestQuotas
from strongroom.server.settings import load_settings
from strongroom.server.wiring import build_core, prepare
from strongroom.services.core import Core
from strongroom.services.quotas import set_quota

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"
CALLER = Caller(
    principal=Principal(f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, "root", ACCOUNT),
    access_key_id="AKIAEXAMPLE",
    region="us-east-1",
    source_ip="127.0.0.1",
    user_agent="test",
)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    settings = load_settings(data_dir=tmp_path / "data", log_level="warning")
    prepare(settings)
    c = build_core(settings)
    set_quota(c.store, "*", "CreateKey request rate", 3, time.time())
    yield c
    c.store.close()


def _quotas(core: Core, mode: str, workers: int = 1) -> RequestQuotas:
    q = RequestQuotas(core, enabled=True, mode=mode, workers=workers, sqlite=True)
    q.start()
    return q


async def _admitted(q: RequestQuotas, n: int, operation: str = "CreateKey") -> int:
    """How many of ``n`` requests at once ``q`` lets through."""
    ok = 0
    for _ in range(n):
        try:
            waiting = q.admit(CALLER, operation, {})
            if waiting is not None:
                await waiting
            ok += 1
        except ThrottlingException as exc:
            assert exc.message == THROTTLED
    return ok


def test_auto_is_local_for_one_worker_on_sqlite_and_lease_otherwise(core: Core) -> None:
    assert RequestQuotas(core, enabled=True, mode="auto", workers=1, sqlite=True).mode == "local"
    assert RequestQuotas(core, enabled=True, mode="auto", workers=2, sqlite=True).mode == "lease"
    assert RequestQuotas(core, enabled=True, mode="auto", workers=1, sqlite=False).mode == "lease"


def test_a_process_alone_has_an_exact_bucket(core: Core) -> None:
    q = _quotas(core, "local")
    assert asyncio.run(_admitted(q, 10)) == 3  # a second's burst
    time.sleep(0.4)  # 1.2 tokens
    assert asyncio.run(_admitted(q, 10)) == 1
    # Other quotas are counted apart.
    assert asyncio.run(_admitted(q, 3, "CreateAlias")) == 3


def test_off_admits_everything(core: Core) -> None:
    q = RequestQuotas(core, enabled=False, mode="local", workers=1, sqlite=True)
    assert asyncio.run(_admitted(q, 20)) == 20


def test_processes_that_lease_share_one_limit(core: Core) -> None:
    first, second = _quotas(core, "lease", 2), _quotas(core, "lease", 2)

    async def both() -> tuple[int, int]:
        return await _admitted(first, 10), await _admitted(second, 10)

    try:
        a, b = asyncio.run(both())
        assert a + b == 3  # one bucket of 3 between them
        time.sleep(0.7)  # 2.1 tokens in the shared bucket
        a, b = asyncio.run(both())
        assert a + b == 2
    finally:
        first.stop()
        second.stop()


def test_split_gives_each_process_its_share(core: Core) -> None:
    set_quota(core.store, "*", "CreateKey request rate", 4, time.time())
    first, second = _quotas(core, "split", 2), _quotas(core, "split", 2)
    assert asyncio.run(_admitted(first, 10)) == 2
    assert asyncio.run(_admitted(second, 10)) == 2


def _caller(account: str) -> Caller:
    principal = Principal(f"arn:aws:iam::{account}:root", account, "root", account)
    return Caller(principal, "AKIAEXAMPLE", "us-east-1", "127.0.0.1", "test")


def test_a_bucket_in_use_outlives_many_other_callers(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the bound of the tables, the least recently used callers' buckets go: a caller
    over its rate meanwhile stays throttled (a table cleared whole gave it a full bucket)."""
    monkeypatch.setattr("strongroom.server.quotas.MAX_BUCKETS", 50)
    q = _quotas(core, "local")
    assert asyncio.run(_admitted(q, 10)) == 3  # CALLER's burst, then throttled

    async def others_then_caller() -> int:
        throttled = 0
        for n in range(200):  # four times the bound of other accounts, one request each
            assert q.admit(_caller(f"{100000000000 + n}"), "CreateKey", {}) is None
            try:
                q.admit(CALLER, "CreateKey", {})
            except ThrottlingException:
                throttled += 1
        return throttled

    start = time.monotonic()
    throttled = asyncio.run(others_then_caller())
    refilled = int((time.monotonic() - start) * 3) + 1  # tokens the rate of 3/s gave back
    assert throttled >= 200 - refilled
    assert len(q._buckets) <= 50 and len(q._routes) <= 50


def test_a_new_value_applies_at_the_next_reload(core: Core) -> None:
    q = _quotas(core, "local")
    assert asyncio.run(_admitted(q, 10)) == 3
    set_quota(core.store, ACCOUNT, "CreateKey request rate", 1000, time.time())
    core.quota_values.reload(core.store)  # what the change feed's poll does
    time.sleep(0.01)
    assert asyncio.run(_admitted(q, 5)) == 5


def test_cryptographic_requests_count_against_their_keys_class(core: Core) -> None:
    from strongroom.domain.enums import KeySpec, KeyUsage
    from strongroom.services.core import RequestContext
    from strongroom.services.keys import create_key

    set_quota(core.store, "*", "Cryptographic operations (RSA) request rate", 2, time.time())
    ctx = RequestContext(CALLER, "r")
    rsa = create_key(core, ctx, key_spec=KeySpec.RSA_2048, key_usage=KeyUsage.SIGN_VERIFY)
    q = _quotas(core, "local")

    async def signs(params: dict[str, Any], n: int) -> int:
        ok = 0
        for _ in range(n):
            try:
                waiting = q.admit(CALLER, "Sign", params)
                if waiting is not None:  # the key is not cached yet: loaded in a thread
                    await waiting
                ok += 1
            except ThrottlingException:
                pass
        return ok

    try:
        assert asyncio.run(signs({"KeyId": rsa.arn}, 5)) == 2
        assert asyncio.run(_admitted(q, 5, "GenerateRandom")) == 5  # symmetric: apart
    finally:
        q.stop()


def test_a_lowered_quota_is_not_outrun_by_tokens_leased_before(core: Core) -> None:
    set_quota(core.store, "*", "CreateKey request rate", 1000, time.time())
    core.quota_values.reload(core.store)
    q = _quotas(core, "lease", 2)
    try:
        assert asyncio.run(_admitted(q, 1)) == 1  # this process holds a lease of 50 now
        set_quota(core.store, "*", "CreateKey request rate", 2, time.time())
        core.quota_values.reload(core.store)
        # At most a lease at the new rate (1) and the shared bucket's new capacity (2).
        assert asyncio.run(_admitted(q, 20)) <= 3
    finally:
        q.stop()


def test_a_custom_key_stores_keys_also_count_against_their_stores_quota(core: Core) -> None:
    from strongroom.domain.enums import Origin
    from strongroom.services.core import RequestContext
    from strongroom.services.keys import create_key

    key = create_key(core, RequestContext(CALLER, "r"))
    in_store = key.evolve(custom_key_store_id="cks-1234567890abcdef0", origin=Origin.AWS_CLOUDHSM)
    core.cache.put_key(in_store, core.cache.generation)  # as if the store held it
    q = _quotas(core, "local")
    # 1,800 a second per store (not adjustable); GenerateDataKey uses three of them.
    admitted = asyncio.run(_admitted_with(q, "GenerateDataKey", {"KeyId": key.key_id}, 700))
    assert 600 <= admitted <= 610  # and what refilled during the loop
    # Each store's quota is its own: the key moved to another store is not throttled.
    other = key.evolve(custom_key_store_id="cks-0000000000abcdef0", origin=Origin.AWS_CLOUDHSM)
    core.cache.put_key(other, core.cache.generation)
    assert asyncio.run(_admitted_with(q, "Encrypt", {"KeyId": key.key_id}, 3)) == 3


async def _admitted_with(q: RequestQuotas, operation: str, params: dict[str, Any], n: int) -> int:
    ok = 0
    for _ in range(n):
        try:
            waiting = q.admit(CALLER, operation, params)
            if waiting is not None:
                await waiting
            ok += 1
        except ThrottlingException:
            pass
    return ok


def test_replicate_key_counts_twice_against_create_key_in_the_replicas_region(
    core: Core,
) -> None:
    q = _quotas(core, "local")  # CreateKey: 3 a second (the fixture's)
    replicate = {"KeyId": "mrk-1234abcd12ab34cd56ef1234567890ab", "ReplicaRegion": "us-west-2"}
    assert asyncio.run(_admitted_with(q, "ReplicateKey", replicate, 3)) == 1  # 2 of 3, then 1
    assert asyncio.run(_admitted(q, 3)) == 3  # CreateKey in the caller's Region: its own
    assert asyncio.run(_admitted_with(q, "UpdatePrimaryRegion", {}, 5)) == 2  # 2 each of 5
