"""A change announced through the change feed (another process's DisableKey, PutKeyPolicy,
CreateGrant, ...) drops the key from this process's bounded caches: its record, its grants
and its unwrapped material, whatever their place in the recency order."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strongroom.handlers.registry import HANDLERS
from strongroom.server.jobs import Jobs
from strongroom.server.settings import load_settings
from strongroom.server.wiring import Runtime, build_runtime, prepare
from strongroom.services.core import RequestContext

from .._keys import ACCOUNT, ROOT

pytestmark = pytest.mark.unit


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = load_settings(
        data_dir=tmp_path / "data", account=ACCOUNT, key_cache_keys=3, material_cache_keys=3
    )
    prepare(settings)
    runtime = build_runtime(settings)
    yield runtime
    runtime.core.store.close()


def _encrypt(runtime: Runtime, key_id: str) -> None:
    # The handler takes what the codec decoded: the blob's bytes.
    HANDLERS["Encrypt"](
        runtime.core, RequestContext(ROOT, "r"), {"KeyId": key_id, "Plaintext": b"data"}
    )


def test_the_change_feed_drops_a_recently_used_key_from_every_bounded_cache(
    runtime: Runtime,
) -> None:
    core = runtime.core
    ctx = RequestContext(ROOT, "r")
    made = [HANDLERS["CreateKey"](core, ctx, {})["KeyMetadata"]["Arn"] for _ in range(4)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        jobs = Jobs(runtime, pool)
        jobs.poll_changes()  # the creations
        for arn in made:
            _encrypt(runtime, arn)
        assert core.cache.sizes()["keys"] == 3  # the bound: the first key went
        assert core.cache.key(made[0]) is None
        kept = made[3]
        assert core.cache.key(kept) is not None and core.cache.grants(kept) is not None
        with core.store.transaction() as tx:  # another process changes the key
            tx.changes.record(kept, datetime.now(UTC))
        jobs.poll_changes()
    assert core.cache.key(kept) is None
    assert core.cache.grants(kept) is None
    software = core.keystores._software  # type: ignore[attr-defined]
    assert software._cache.get(kept, 1) is None
    assert core.cache.key(made[2]) is not None  # the others stay
