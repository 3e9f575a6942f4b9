"""Changes to one key at the same moment, on real SQLite and PostgreSQL: a key's deletion at
the end of its waiting period against a CancelKeyDeletion (a cancelled deletion never
deletes the key afterwards), against a change to its whole multi-Region set and against a
re-wrap under a new root key (neither waits for the other forever); TagResource and
CreateAlias calls at once stay within the tags and aliases a key may have."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.domain.enums import KeySpec, KeyState, KeyUsage
from strongroom.domain.errors import KmsError, LimitExceededException, TagException
from strongroom.domain.ids import key_arn
from strongroom.handlers.registry import HANDLERS
from strongroom.keystores.ring import RootKeyRing
from strongroom.server.settings import load_settings
from strongroom.server.wiring import Runtime, build_runtime, prepare
from strongroom.services.core import RequestContext
from strongroom.services.deletion import delete_due_keys
from strongroom.services.key_records import insert_key, new_key_record
from strongroom.services.multiregion import complete_replication
from strongroom.services.root_key import rewrap

from .._keys import ACCOUNT, ROOT, SoftwareV2Key

pytestmark = pytest.mark.unit


@pytest.fixture
def runtime(tmp_path: Path, shared_url: str) -> Iterator[Runtime]:
    settings = load_settings(data_dir=tmp_path / "data", database_url=shared_url, account=ACCOUNT)
    prepare(settings)
    rt = build_runtime(settings)
    rt.audit.start()  # the jobs' intents and events
    yield rt
    rt.audit.stop()
    rt.core.store.close()


def test_a_deletion_cancelled_as_the_job_runs_keeps_the_key(runtime: Runtime) -> None:
    """The request holds the key's row and commits its cancel while the job waits for it.
    The job read the keys due before the cancel committed and then deleted by ARN alone,
    so on PostgreSQL it deleted the key whose deletion had just been cancelled."""
    core = runtime.core
    now = core.clock()
    key = new_key_record(
        "111122223333",
        "us-east-1",
        str(uuid.uuid4()),
        key_spec=KeySpec.SYMMETRIC_DEFAULT,
        key_usage=KeyUsage.ENCRYPT_DECRYPT,
        description="",
        policy="{}",
        created=now - timedelta(days=8),
    ).evolve(state=KeyState.PENDING_DELETION, deletion_date=now - timedelta(seconds=1))
    material = core.keystores.for_key(key).new_material(key)
    with core.store.transaction() as tx:
        insert_key(core, tx, key, material, ())
    deleted: list[int] = []
    job = threading.Thread(target=lambda: deleted.append(delete_due_keys(core)))
    with core.store.transaction() as tx:  # CancelKeyDeletion's transaction
        current = tx.keys.get(key.arn, for_update=True)
        assert current is not None
        tx.keys.update(current.evolve(state=KeyState.DISABLED, deletion_date=None))
        job.start()
        time.sleep(0.5)  # the job is waiting for this transaction
    job.join(30)
    assert deleted == [0]
    with core.store.read() as tx:
        kept = tx.keys.get(key.arn)
    assert kept is not None and kept.state is KeyState.DISABLED


def test_the_deletion_job_and_a_change_to_a_whole_multi_region_set_take_turns(
    runtime: Runtime,
) -> None:
    """A change to a multi-Region set (RotateKeyOnDemand of a primary with imported material
    makes the pending material current in its replicas too) locks the primary's row, then
    its replicas'. The job locked the replica due for deletion, then the rest of its set: on
    PostgreSQL each held a row the other waited for, and one of them was aborted."""
    core = runtime.core
    ctx = RequestContext(ROOT, "r")
    primary = HANDLERS["CreateKey"](core, ctx, {"MultiRegion": True})["KeyMetadata"]
    params = {"KeyId": primary["Arn"], "ReplicaRegion": "eu-west-1"}
    HANDLERS["ReplicateKey"](core, ctx, params)
    complete_replication(core)
    replica_arn = key_arn("eu-west-1", ACCOUNT, primary["KeyId"])
    now = core.clock()
    with core.store.transaction() as tx:
        replica = tx.keys.get(replica_arn, for_update=True)
        assert replica is not None
        due = replica.evolve(state=KeyState.PENDING_DELETION, deletion_date=now - timedelta(1))
        tx.keys.update(due)
    deleted: list[int] = []
    job = threading.Thread(target=lambda: deleted.append(delete_due_keys(core)))
    with core.store.transaction() as tx:  # the change to the set
        assert tx.keys.get(primary["Arn"], for_update=True) is not None
        job.start()
        time.sleep(0.5)  # the job waits for this transaction
        assert tx.keys.get(replica_arn, for_update=True) is not None
    job.join(30)
    assert deleted == [1]
    with core.store.read() as tx:
        assert tx.keys.get(replica_arn) is None
        assert [k.arn for k in tx.keys.related(ACCOUNT, primary["KeyId"])] == [primary["Arn"]]


def test_the_deletion_job_and_a_re_wrap_take_turns(runtime: Runtime) -> None:
    """The job deletes the keys due in the order keys are locked (account, key id, Region);
    the re-wrap replaced a batch of material rows in ARN order (Region first). With one key
    before the other in each order, each held a row the other waited for on PostgreSQL."""
    core = runtime.core
    east = RequestContext(ROOT, "r")
    west = RequestContext(dataclasses.replace(ROOT, region="eu-west-1"), "r")
    while True:  # the eu-west-1 key first by ARN, the us-east-1 key first by key id
        first = HANDLERS["CreateKey"](core, east, {})["KeyMetadata"]
        second = HANDLERS["CreateKey"](core, west, {})["KeyMetadata"]
        if first["KeyId"] < second["KeyId"]:
            break
    with core.store.read() as tx:
        keys = [tx.keys.get(k["Arn"]) for k in (first, second)]
    ring = RootKeyRing(SoftwareV2Key(), [core.root_key], file_key=core.root_key)
    done: list[int] = []
    moving = threading.Thread(target=lambda: done.append(rewrap(core.store, ring, _quiet, pause=0)))
    with core.store.transaction() as tx:  # the job's, deleting the two keys in its order
        assert keys[0] is not None and keys[1] is not None
        tx.keys.delete(keys[0])
        moving.start()
        time.sleep(0.5)  # the re-wrap waits for this transaction
        tx.keys.delete(keys[1])
    moving.join(30)
    assert len(done) == 1
    with core.store.read() as tx:
        assert tx.keys.get(first["Arn"]) is None and tx.keys.get(second["Arn"]) is None


def _quiet(kind: str, done: int, total: int) -> None:
    pass


def _at_once(calls: list[Callable[[], int]]) -> int:
    """Run ``calls`` on threads of their own, released together; the sum of what they
    returned (refusals)."""
    start = threading.Barrier(len(calls))
    refused: list[int] = []

    def run(call: Callable[[], int]) -> None:
        start.wait()
        refused.append(call())

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(refused) == len(calls)
    return sum(refused)


def _refusals(
    runtime: Runtime, operation: str, each: list[dict[str, object]], error: type[KmsError]
) -> Callable[[], int]:
    """A call of ``operation`` with each of ``each``'s parameters in turn; how many were
    refused with ``error``."""

    def run() -> int:
        refused = 0
        for params in each:
            try:
                HANDLERS[operation](runtime.core, RequestContext(ROOT, "r"), params)
            except error:
                refused += 1
        return refused

    return run


def test_calls_at_once_stay_within_what_a_key_may_have(runtime: Runtime) -> None:
    """Two TagResource calls of 30 new tags each (a key may have 50): one is refused. Two
    series of 26 CreateAlias calls (a key may have 50 aliases): two are refused. Each call
    read what the key had before the other's committed, so on PostgreSQL both were written,
    and the key had 60 tags or 52 aliases."""
    ctx = RequestContext(ROOT, "r")
    for _ in range(5):  # the calls do not always meet: five keys, five chances
        key_id = HANDLERS["CreateKey"](runtime.core, ctx, {})["KeyMetadata"]["KeyId"]
        tags = [
            [{"KeyId": key_id, "Tags": [{"TagKey": f"{s}{i}", "TagValue": "v"} for i in range(30)]}]
            for s in "ab"
        ]
        assert _at_once([_refusals(runtime, "TagResource", t, TagException) for t in tags]) == 1
        listed = HANDLERS["ListResourceTags"](runtime.core, ctx, {"KeyId": key_id, "Limit": 50})
        assert len(listed["Tags"]) == 30
        aliases = [
            [{"AliasName": f"alias/{s}{i}-{key_id}", "TargetKeyId": key_id} for i in range(26)]
            for s in "ab"
        ]
        refusals = [_refusals(runtime, "CreateAlias", a, LimitExceededException) for a in aliases]
        assert _at_once(refusals) == 2
        listed = HANDLERS["ListAliases"](runtime.core, ctx, {"KeyId": key_id, "Limit": 100})
        assert len(listed["Aliases"]) == 50
