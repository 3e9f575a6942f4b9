"""A multi-Region replica reads its material through its primary: every version, and the
current version number; related keys show the same KeyMaterialIds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.domain.enums import KeySpec, KeyUsage
from strongroom.domain.models import Key
from strongroom.services.cache import KeyCache
from strongroom.services.core import Core
from strongroom.services.material import (
    copy_material,
    current_version,
    hmac_secret,
    material_aad,
    material_id_of,
    new_material,
    store_material,
    symmetric_aead,
)

from .._keys import symmetric_key
from .test_material import FakeRootKey, FakeStore

pytestmark = pytest.mark.unit

NOW = datetime.now(UTC)
KEY_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"


def _mrk(region: str, spec: KeySpec = KeySpec.SYMMETRIC_DEFAULT, version: int = 1) -> Key:
    usage = (
        KeyUsage.GENERATE_VERIFY_MAC if spec.name.startswith("HMAC") else KeyUsage.ENCRYPT_DECRYPT
    )
    return symmetric_key().evolve(
        arn=f"arn:aws:kms:{region}:111122223333:key/{KEY_ID}",
        key_id=KEY_ID,
        region=region,
        key_usage=usage,
        key_spec=spec,
        multi_region=True,
        creation_date=NOW,
        current_version=version,
        primary_region="us-east-1",
    )


def _core() -> tuple[Core, FakeStore]:
    store = FakeStore()
    core = Core(store=store, root_key=FakeRootKey(), cache=KeyCache())  # type: ignore[arg-type]
    return core, store


def test_replica_reads_the_primary_material_rows() -> None:
    core, store = _core()
    primary, replica = _mrk("us-east-1", KeySpec.HMAC_256), _mrk("eu-west-1", KeySpec.HMAC_256)
    secret = new_material(KeySpec.HMAC_256)
    store_material(core, store, primary.arn, 1, secret, NOW)  # type: ignore[arg-type]
    core.cache.put_key(primary, core.cache.generation)
    assert hmac_secret(core, replica) == secret
    assert set(store.rows) == {(primary.arn, 1)}


def test_replica_uses_the_current_version_of_its_primary() -> None:
    core, store = _core()
    primary = _mrk("us-east-1", version=2)
    for version in (1, 2):
        material = new_material(KeySpec.SYMMETRIC_DEFAULT)
        store_material(core, store, primary.arn, version, material, NOW)  # type: ignore[arg-type]
    core.cache.put_key(primary, core.cache.generation)
    replica = _mrk("eu-west-1", version=1)  # its own row lags: rotation changed the primary
    assert current_version(core, replica) == 2
    assert current_version(core, primary) == 2
    assert isinstance(symmetric_aead(core, replica, 2), AESGCM)


def test_related_keys_show_the_same_material_ids() -> None:
    core, _ = _core()
    us, eu = _mrk("us-east-1", version=2), _mrk("eu-west-1", version=2)
    core.cache.put_key(us, core.cache.generation)
    assert material_id_of(core, us, 1) == material_id_of(core, eu, 1)
    assert material_id_of(core, us, 1) != material_id_of(core, us, 2)
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    single = [
        _mrk(region).evolve(
            arn=f"arn:aws:kms:{region}:111122223333:key/{key_id}",
            key_id=key_id,
            multi_region=False,
            primary_region=None,
        )
        for region in ("us-east-1", "eu-west-1")
    ]
    assert material_id_of(core, single[0], 1) != material_id_of(core, single[1], 1)


def test_copy_material_rewraps_missing_versions_under_the_target() -> None:
    core, store = _core()
    source, target = _mrk("us-east-1").arn, _mrk("eu-west-1").arn
    made = {v: new_material(KeySpec.SYMMETRIC_DEFAULT) for v in (1, 2)}
    for version, material in made.items():
        store_material(core, store, source, version, material, NOW)  # type: ignore[arg-type]
    store_material(core, store, target, 1, made[1], NOW)  # type: ignore[arg-type]
    before = store.rows[(target, 1)]
    copy_material(core, store, source, target, range(1, 4), NOW)  # type: ignore[arg-type]
    assert store.rows[(target, 1)] is before
    assert (target, 3) not in store.rows
    unwrapped = core.root_key.unwrap(store.rows[(target, 2)], material_aad(target, 2))
    assert unwrapped == made[2].value


def test_invalidating_a_key_forgets_its_replica_regions() -> None:
    cache = KeyCache()
    arn = _mrk("us-east-1").arn
    cache.put_replica_regions(arn, ("eu-west-1",))
    assert cache.replica_regions(arn) == ("eu-west-1",)
    cache.invalidate(arn)
    assert cache.replica_regions(arn) is None
