"""services.keys.store_new_key: a key whose transaction fails leaves nothing of itself in its
key store (a token object generated for it is discarded again); one that commits keeps it."""

from __future__ import annotations

import pytest

from strongroom.keystores.base import KeyStores, NewMaterial
from strongroom.services.keys import store_new_key

from .._keys import symmetric_key
from .._material_store import FakeMaterial, FakeStore, software_core

pytestmark = pytest.mark.unit


class _Keys:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.inserted: list[str] = []

    def insert(self, key: object) -> None:
        if self.fail:
            raise RuntimeError("database is locked")
        self.inserted.append(key.arn)  # type: ignore[attr-defined]

    def update(self, key: object) -> None:
        pass


class _Material(FakeMaterial):
    def versions(self, arn: str) -> list[object]:
        return []

    def insert_version(self, info: object) -> None:
        pass


class _Quotas:
    """No quota values set, no keys yet (the quota "AWS KMS keys" reads both)."""

    def value_for(self, account: str, name: str) -> None:
        return None

    def customer_managed_keys(self, account: str, region: str) -> int:
        return 0


class _Store(FakeStore):
    def __init__(self, fail: bool) -> None:
        super().__init__()
        self.keys = _Keys(fail)
        self.material = _Material(self)
        self.quotas = _Quotas()


class _RecordingStore:
    """Delegates to the software store, and records ``discard``."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.discarded: list[str] = []

    def discard(self, key: object) -> None:
        self.discarded.append(key.arn)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.mark.parametrize("fail", [True, False])
def test_a_failed_creation_discards_what_the_store_made(fail: bool) -> None:
    core, _, software = software_core()
    store = _Store(fail)
    core.store = store  # type: ignore[assignment]
    recording = _RecordingStore(software)
    core.keystores = KeyStores(recording)  # type: ignore[arg-type]
    key = symmetric_key().evolve(current_version=0, current_material_id=None)
    material: NewMaterial = software.new_material(key)
    if fail:
        with pytest.raises(RuntimeError, match="database is locked"):
            store_new_key(core, key, material, ())
        assert recording.discarded == [key.arn]
    else:
        store_new_key(core, key, material, ())
        assert recording.discarded == []
        assert store.keys.inserted == [key.arn]
        assert (key.arn, 1) in store.rows  # the material was stored, wrapped
