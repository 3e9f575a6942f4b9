"""The key cache never keeps a record read before an invalidation that came in while it was
being read (another process's change announced meanwhile), passes every invalidation on
to its listeners (the key stores' material caches), keeps each map within its bound by
letting the least recently used entry go, shares repeated strings between records and
leaves out of a record what it derives (the KeyMaterialId of generated material)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from strongroom.authz.grants import NO_GRANTS, GrantRule, KeyGrants
from strongroom.crypto.key_import import generated_material_id
from strongroom.domain.enums import Origin
from strongroom.domain.models import Key
from strongroom.services.cache import KeyCache

from .._keys import ARN, symmetric_key

pytestmark = pytest.mark.unit

KEY = symmetric_key()


def test_a_read_that_raced_an_invalidation_is_not_kept() -> None:
    cache = KeyCache()
    generation = cache.generation  # a request starts reading the key
    cache.invalidate(ARN)  # meanwhile the change feed announces a change of it
    cache.put_key(KEY, generation)
    assert cache.key(ARN) is None
    generation = cache.generation  # read again after the invalidation: kept
    cache.put_key(KEY, generation)
    assert cache.key(ARN) == KEY


class Listener:
    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, arn: str) -> None:
        self.forgotten.append(arn)

    def forget_all(self) -> None:
        self.forgotten.append("*")


def test_invalidations_reach_the_listeners() -> None:
    cache, listener = KeyCache(), Listener()
    cache.add_listener(listener)
    cache.invalidate(ARN)
    cache.clear()
    assert listener.forgotten == [ARN, "*"]


def _key(n: int, policy: str = "{}") -> Key:
    key_id = f"00000000-0000-4000-8000-{n:012d}"
    return replace(KEY, arn=ARN.rsplit("/", 1)[0] + "/" + key_id, policy=policy)


def test_a_full_cache_lets_the_least_recently_used_key_go_not_every_key() -> None:
    cache = KeyCache(max_entries=3)
    keys = [_key(i) for i in range(4)]
    for key in keys[:3]:
        cache.put_key(key, cache.generation)
    assert cache.key(keys[0].arn) == keys[0]  # used: keys[1] is now the least recent
    cache.put_key(keys[3], cache.generation)
    assert cache.key(keys[1].arn) is None
    assert [cache.key(k.arn) for k in (keys[0], keys[2], keys[3])] == [keys[0], keys[2], keys[3]]
    assert cache.sizes()["keys"] == 3


def test_every_map_of_the_cache_holds_at_most_its_bound() -> None:
    cache = KeyCache(max_entries=5)
    for i in range(50):
        arn = _key(i).arn
        cache.put_key(_key(i), cache.generation)
        cache.put_grants(arn, NO_GRANTS)
        cache.put_tags(arn, {"t": str(i)}, cache.generation)
        cache.put_alias_names(arn, (f"alias/a{i}",), cache.generation)
        cache.put_material_id(arn, 1, f"{i:064x}")
        cache.put_replica_regions(arn, ("eu-west-1",))
        cache.put_alias(("111122223333", "us-east-1", f"alias/a{i}"), arn)
    sizes = cache.sizes()
    assert sizes.pop("policy_texts") == 1
    assert sizes == dict.fromkeys(sizes, 5)
    last = _key(49).arn
    assert cache.tags(last) == {"t": "49"} and cache.material_id(last, 1) == f"{49:064x}"


def test_an_invalidation_still_drops_every_entry_of_a_key_that_was_used() -> None:
    cache, listener = KeyCache(max_entries=3), Listener()
    cache.add_listener(listener)
    key = _key(1)
    cache.put_key(key, cache.generation)
    cache.put_grants(key.arn, NO_GRANTS)
    cache.put_tags(key.arn, {"a": "b"}, cache.generation)
    cache.put_material_id(key.arn, 1, "f" * 64)
    assert cache.key(key.arn) == key and cache.grants(key.arn) is NO_GRANTS
    cache.invalidate(key.arn)
    assert cache.key(key.arn) is None
    assert cache.grants(key.arn) is None
    assert cache.tags(key.arn) is None
    assert cache.material_id(key.arn, 1) is None
    assert listener.forgotten == [key.arn]


def test_cached_records_share_one_copy_of_a_policy_text_their_account_and_region() -> None:
    cache = KeyCache()
    policy = '{"Version": "2012-10-17", "Statement": []}'
    # Texts equal but not the same object, as two database rows give them.
    first, second = _key(1, "".join(policy)), _key(2, policy[:10] + policy[10:])
    assert first.policy is not second.policy
    cache.put_key(first, cache.generation)
    cache.put_key(second, cache.generation)
    one, two = cache.key(first.arn), cache.key(second.arn)
    assert one is not None and two is not None
    assert one.policy is two.policy and one.account is two.account
    assert one.region is two.region
    assert one == first and two == second


def test_a_cached_record_of_generated_material_leaves_out_its_derived_material_id() -> None:
    cache = KeyCache()
    derived = generated_material_id(_key(1).arn, 1)
    generated = _key(1).evolve(current_version=1, current_material_id=derived)
    imported = _key(2).evolve(
        origin=Origin.EXTERNAL, current_version=1, current_material_id="e" * 64
    )
    for key in (generated, imported):
        cache.put_key(key, cache.generation)
    kept = cache.key(generated.arn)
    assert kept is not None and kept.current_material_id is None
    assert kept.evolve(current_material_id=derived) == generated
    assert cache.key(imported.arn) == imported  # not derivable: kept as read
    assert cache.generated_material_id(kept, 1) == derived
    assert cache.generated_material_id(kept, 2) == generated_material_id(generated.arn, 2)


def test_a_key_without_grants_is_kept_as_its_record_alone_and_grants_survive_a_reread() -> None:
    cache = KeyCache()
    plain, granted = _key(1), _key(2)
    grants = KeyGrants(
        {"g1": GrantRule("arn:aws:iam::111122223333:user/u", frozenset({"Encrypt"}))}
    )
    for key in (plain, granted):
        cache.put_key(key, cache.generation)
        assert cache.grants(key.arn) is None  # not read yet
    cache.put_grants(plain.arn, NO_GRANTS)
    cache.put_grants(granted.arn, grants)
    assert cache._keys[plain.arn] is cache.key(plain.arn)  # no (record, grants) pair kept
    for key in (plain, granted):  # the record read again (no invalidation between): kept
        cache.put_key(key, cache.generation)
    assert (cache.key(plain.arn), cache.grants(plain.arn)) == (plain, NO_GRANTS)
    assert (cache.key(granted.arn), cache.grants(granted.arn)) == (granted, grants)
    assert cache.sizes()["grants"] == 2
