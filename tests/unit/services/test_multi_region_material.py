"""A multi-Region replica reads its material through its primary: every version, and the
current version number; related keys show the same KeyMaterialIds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strongroom.crypto.wrap import material_aad
from strongroom.domain.enums import KeySpec, KeyUsage, MacAlgorithm
from strongroom.domain.models import Key
from strongroom.keystores.software import SoftwareKeyStore
from strongroom.services.cache import KeyCache
from strongroom.services.core import Core
from strongroom.services.material import current_version, material_id_of

from .._keys import symmetric_key
from .._material_store import FakeStore, software_core

pytestmark = pytest.mark.unit

NOW = datetime.now(UTC)
KEY_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"


def _mrk(region: str, spec: KeySpec = KeySpec.SYMMETRIC_DEFAULT, version: int = 1) -> Key:
    usage = (
        KeyUsage.GENERATE_VERIFY_MAC if spec.name.startswith("HMAC") else KeyUsage.ENCRYPT_DECRYPT
    )
    return symmetric_key().evolve(
        arn=f"arn:aws:kms:{region}:111122223333:key/{KEY_ID}",
        region=region,
        key_usage=usage,
        key_spec=spec,
        multi_region=True,
        creation_date=NOW,
        current_version=version,
        primary_region="us-east-1",
    )


def _core() -> tuple[Core, FakeStore, SoftwareKeyStore]:
    return software_core()


def _put(software: SoftwareKeyStore, store: FakeStore, key: Key, version: int = 1) -> None:
    software.put_material(store, key, version, software.new_material(key), NOW)  # type: ignore[arg-type]


def test_replica_reads_the_primary_material_rows() -> None:
    core, store, software = _core()
    primary, replica = _mrk("us-east-1", KeySpec.HMAC_256), _mrk("eu-west-1", KeySpec.HMAC_256)
    _put(software, store, primary)
    alg = MacAlgorithm.HMAC_SHA_256
    mac = software.generate_mac(primary, 1, b"m", alg)
    assert core.keystores.for_key(replica).generate_mac(replica, 1, b"m", alg) == mac
    assert set(store.rows) == {(primary.arn, 1)}


def test_replica_uses_the_current_version_of_its_primary() -> None:
    core, store, software = _core()
    primary = _mrk("us-east-1", version=2)
    for version in (1, 2):
        _put(software, store, primary, version)
    core.cache.put_key(primary, core.cache.generation)
    replica = _mrk("eu-west-1", version=1)  # its own row lags: rotation changed the primary
    assert current_version(core, replica) == 2
    assert current_version(core, primary) == 2
    sealed = software.encrypt(primary, 2, bytes(12), b"p", b"")
    assert software.decrypt(replica, 2, bytes(12), sealed, b"") == b"p"


def test_related_keys_show_the_same_material_ids() -> None:
    core, _, _ = _core()
    us, eu = _mrk("us-east-1", version=2), _mrk("eu-west-1", version=2)
    core.cache.put_key(us, core.cache.generation)
    assert material_id_of(core, us, 1) == material_id_of(core, eu, 1)
    assert material_id_of(core, us, 1) != material_id_of(core, us, 2)
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    single = [
        _mrk(region).evolve(
            arn=f"arn:aws:kms:{region}:111122223333:key/{key_id}",
            multi_region=False,
            primary_region=None,
        )
        for region in ("us-east-1", "eu-west-1")
    ]
    assert material_id_of(core, single[0], 1) != material_id_of(core, single[1], 1)


def test_copy_material_rewraps_missing_versions_under_the_target() -> None:
    core, store, software = _core()
    source, target = _mrk("us-east-1"), _mrk("eu-west-1")
    for version in (1, 2):
        _put(software, store, source, version)
    _put(software, store, target, 1)
    before = store.rows[(target.arn, 1)]
    software.copy_material(store, source, target, range(1, 4), NOW)  # type: ignore[arg-type]
    assert store.rows[(target.arn, 1)] is before
    assert (target.arn, 3) not in store.rows
    unwrapped = core.root_key.unwrap(store.rows[(target.arn, 2)], material_aad(target.arn, 2))
    assert unwrapped == core.root_key.unwrap(
        store.rows[(source.arn, 2)], material_aad(source.arn, 2)
    )


def test_invalidating_a_key_forgets_its_replica_regions() -> None:
    cache = KeyCache()
    arn = _mrk("us-east-1").arn
    cache.put_replica_regions(arn, ("eu-west-1",))
    assert cache.replica_regions(arn) == ("eu-west-1",)
    cache.invalidate(arn)
    assert cache.replica_regions(arn) is None
