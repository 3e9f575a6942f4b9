"""Applying a seed to a real (SQLite) store: idempotence, key states, the rotation seam."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from strongroom.domain.enums import KeyState
from strongroom.server.settings import Settings
from strongroom.server.wiring import build_core, prepare
from strongroom.services.core import Core
from strongroom.services.seed_file import SeedError, parse_seed
from strongroom.services.seeding import SeedOutcome, apply_seed

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"
ID = "5eed0001-0000-4000-8000-000000000001"
ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{ID}"


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    settings = Settings(data_dir=tmp_path / "data")
    prepare(settings)
    core = build_core(settings)
    yield core
    core.store.close()


def seed(core: Core, **fields: object) -> SeedOutcome:
    text = yaml.safe_dump({"keys": [{"id": ID, **fields}]})
    return apply_seed(core, parse_seed(text, default_account=ACCOUNT))


def test_a_second_application_writes_nothing(core: Core) -> None:
    fields = {"description": "d", "aliases": ["alias/a"], "tags": {"t": "v"}, "enabled": False}
    assert seed(core, **fields).created == [ARN]
    feed = core.store.latest_change()
    outcome = seed(core, **fields)
    assert (outcome.created, outcome.updated, outcome.unchanged) == ([], {}, [ARN])
    assert core.store.latest_change() == feed


def test_changes_reach_the_change_feed_for_other_processes(core: Core) -> None:
    seed(core, description="one", aliases="alias/a")
    feed = core.store.latest_change()
    outcome = seed(core, description="two", aliases="alias/b")
    assert outcome.updated == {ARN: ["description", "aliases"]}
    _, changed = core.store.changes_since(feed)
    alias_arn = f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/"
    assert changed == {ARN, alias_arn + "a", alias_arn + "b"}


def _schedule_deletion(core: Core) -> None:
    with core.store.transaction() as tx:
        key = tx.keys.get(ARN)
        assert key is not None
        tx.keys.update(
            key.evolve(
                state=KeyState.PENDING_DELETION,
                deletion_date=core.clock() + timedelta(days=7),
                pending_window_days=7,
            )
        )


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"enabled": True}, "enabled"),
        ({"description": "new"}, "description"),
        ({"tags": {"t": "new"}}, "tags"),
        ({"aliases": ["alias/new"]}, "aliases (alias/new)"),
    ],
)
def test_a_key_pending_deletion_refuses_changes(
    core: Core, fields: dict[str, object], rule: str
) -> None:
    seed(core, description="old", tags={"t": "old"})
    _schedule_deletion(core)
    with pytest.raises(SeedError) as info:
        seed(core, **fields)
    assert str(info.value) == (
        f"keys[0] (id {ID}): {rule}: KMSInvalidStateException: {ARN} is pending deletion."
    )


def test_a_key_pending_deletion_that_the_file_leaves_alone_is_left_alone(core: Core) -> None:
    seed(core, description="old")
    _schedule_deletion(core)
    # Not enabled is what DescribeKey shows for a key pending deletion: nothing to change.
    assert seed(core, description="old", enabled=False).unchanged == [ARN]
    with core.store.transaction() as tx:
        key = tx.keys.get(ARN)
    assert key is not None and key.state is KeyState.PENDING_DELETION


def test_rotation_block_is_the_desired_rotation_state(core: Core) -> None:
    def stored() -> tuple[int | None, object]:
        with core.store.transaction() as tx:
            key = tx.keys.get(ARN)
        assert key is not None
        return key.rotation_period_days, key.next_rotation_date

    assert seed(core, rotation={"enabled": True, "period_days": 90}).created == [ARN]
    days, when = stored()
    assert days == 90 and when is not None
    assert seed(core, rotation={"enabled": True, "period_days": 90}).unchanged == [ARN]
    assert seed(core, rotation={"enabled": True, "period_days": 180}).updated == {ARN: ["rotation"]}
    assert stored()[0] == 180
    assert seed(core).unchanged == [ARN]  # not named: kept
    assert stored()[0] == 180
    assert seed(core, rotation={"enabled": False}).updated == {ARN: ["rotation"]}
    assert stored() == (None, None)


def test_an_mrk_id_seeds_a_multi_region_primary_key(core: Core) -> None:
    mrk = "mrk-5eed00010000400080000000000000aa"
    arn = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{mrk}"
    text = yaml.safe_dump({"keys": [{"id": mrk}]})
    assert apply_seed(core, parse_seed(text, default_account=ACCOUNT)).created == [arn]
    with core.store.transaction() as tx:
        key = tx.keys.get(arn)
    assert key is not None and key.multi_region and key.primary_region == "us-east-1"
    assert key.current_version == 1


def _seed_many(core: Core, count: int) -> SeedOutcome:
    ids = [f"5eed0002-0000-4000-8000-{i:012d}" for i in range(count)]
    text = yaml.safe_dump({"keys": [{"id": key_id} for key_id in ids]})
    return apply_seed(core, parse_seed(text, default_account=ACCOUNT))


def test_a_seed_fills_the_key_quota_exactly_and_no_further(core: Core) -> None:
    from strongroom.domain.errors import LimitExceededException
    from strongroom.services.quotas import set_quota

    set_quota(core.store, ACCOUNT, "AWS KMS keys", 4, 0.0)
    seed(core)  # one key
    feed = core.store.latest_change()
    with pytest.raises(LimitExceededException, match="AWS KMS keys"):
        _seed_many(core, 4)  # five in all: the whole seed is refused
    with core.store.transaction() as tx:
        assert tx.quotas.customer_managed_keys(ACCOUNT, "us-east-1") == 1
    assert core.store.latest_change() == feed
    assert len(_seed_many(core, 3).created) == 3  # four in all: the quota
