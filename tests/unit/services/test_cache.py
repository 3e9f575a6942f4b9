"""The key cache never keeps a record or material read before an invalidation that came in
while it was being read (another process's change announced meanwhile)."""

from __future__ import annotations

import pytest

from strongroom.services.cache import KeyCache

from .._keys import ARN, symmetric_key

pytestmark = pytest.mark.unit

KEY = symmetric_key()


def test_a_read_that_raced_an_invalidation_is_not_kept() -> None:
    cache = KeyCache()
    generation = cache.generation  # a request starts reading the key and its material
    cache.invalidate(ARN)  # meanwhile the change feed announces a change of it
    cache.put_key(KEY, generation)
    cache.put_material(ARN, 1, b"old", generation)
    assert cache.key(ARN) is None and cache.material(ARN, 1) is None
    generation = cache.generation  # read again after the invalidation: kept
    cache.put_key(KEY, generation)
    cache.put_material(ARN, 1, b"new", generation)
    assert cache.key(ARN) == KEY and cache.material(ARN, 1) == b"new"


def test_a_multi_region_key_change_drops_the_material_its_replicas_cached() -> None:
    cache = KeyCache()
    key_id = "mrk-1234abcd12ab34cd56ef1234567890ab"
    primary = f"arn:aws:kms:us-east-1:111122223333:key/{key_id}"
    replica = f"arn:aws:kms:eu-west-1:111122223333:key/{key_id}"
    other = f"arn:aws:kms:eu-west-1:444455556666:key/{key_id}"  # another account
    for arn in (primary, replica, other):
        cache.put_material(arn, 1, b"m", cache.generation)
    cache.invalidate(primary)  # e.g. DeleteImportedKeyMaterial on the primary
    assert cache.material(primary, 1) is None and cache.material(replica, 1) is None
    assert cache.material(other, 1) == b"m"
