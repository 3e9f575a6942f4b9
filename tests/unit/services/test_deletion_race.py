"""A key's deletion at the end of its waiting period against a CancelKeyDeletion of the same
key at that moment, on real SQLite and PostgreSQL: whichever commits first wins, and a
cancelled deletion never deletes the key afterwards."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.domain.enums import KeySpec, KeyState, KeyUsage
from strongroom.server.settings import load_settings
from strongroom.server.wiring import Runtime, build_runtime, prepare
from strongroom.services.deletion import delete_due_keys
from strongroom.services.key_records import insert_key, new_key_record

pytestmark = pytest.mark.unit


@pytest.fixture
def runtime(tmp_path: Path, shared_url: str) -> Iterator[Runtime]:
    settings = load_settings(data_dir=tmp_path / "data", database_url=shared_url)
    prepare(settings)
    rt = build_runtime(settings)
    yield rt
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
