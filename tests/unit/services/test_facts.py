"""A key's tags and alias names, for conditions on aws:ResourceTag/<k> and
kms:ResourceAliases, are read once per process and read anew after a change of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from strongroom.domain.enums import (
    EncryptionAlgorithm,
)
from strongroom.domain.models import Alias, Key, Tag
from strongroom.keystores.base import KeyStores
from strongroom.keystores.software import SoftwareKeyStore
from strongroom.services.access import bypass_context
from strongroom.services.cache import KeyCache
from strongroom.services.core import Core
from strongroom.services.encryption import algorithm_context
from strongroom.services.facts import KeyFacts

from .._keys import symmetric_key

pytestmark = pytest.mark.unit

NOW = datetime.now(UTC)
ACCOUNT, REGION = "111122223333", "us-east-1"
ALIAS_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/a"


def _key(name: str) -> Key:
    return symmetric_key().evolve(
        arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}", creation_date=NOW
    )


class FakeStore:
    """Tags and aliases in memory; ``during_read`` runs inside a read, as a concurrent
    change would."""

    def __init__(self) -> None:
        self.tags: dict[str, list[Tag]] = {}
        self.aliases: list[Alias] = []
        self.reads = 0
        self.during_read: Any = None

    @contextmanager
    def transaction(self) -> Iterator[FakeTransaction]:
        yield FakeTransaction(self)

    read = transaction  # the facts only read

    def count_read(self) -> None:
        self.reads += 1
        if self.during_read is not None:
            self.during_read()
            self.during_read = None


class FakeTags:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def list(self, key_arn: str) -> list[Tag]:
        self.store.count_read()
        return [*self.store.tags.get(key_arn, [])]


class FakeAliases:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def list(
        self, account: str, region: str, *, key_id: str | None, after: str | None, limit: int
    ) -> list[Alias]:
        self.store.count_read()
        return [a for a in self.store.aliases if a.target_key_id == key_id][:limit]


class FakeTransaction:
    """The two repositories the facts read."""

    def __init__(self, store: FakeStore) -> None:
        self.tags = FakeTags(store)
        self.aliases = FakeAliases(store)


def _alias(name: str, key: Key) -> Alias:
    return Alias(
        f"arn:aws:kms:{REGION}:{ACCOUNT}:{name}", name, ACCOUNT, REGION, key.key_id, NOW, NOW
    )


def _core() -> tuple[Core, FakeStore]:
    store = FakeStore()
    keystores = KeyStores(SoftwareKeyStore(store, None))  # type: ignore[arg-type]
    return Core(store=store, root_key=None, cache=KeyCache(), keystores=keystores), store  # type: ignore[arg-type]


def test_tags_are_read_once_and_again_after_the_key_changes() -> None:
    core, store = _core()
    key = _key("k1")
    store.tags[key.arn] = [Tag("project", "alpha")]
    facts = KeyFacts(core, key)
    assert facts.tags() == {"project": "alpha"}
    assert KeyFacts(core, key).tags() == {"project": "alpha"}
    assert store.reads == 1
    store.tags[key.arn] = [Tag("project", "beta")]
    core.cache.invalidate(key.arn)  # what TagResource and the change feed do
    assert facts.tags() == {"project": "beta"}
    assert store.reads == 2


def test_alias_names_are_read_anew_after_any_alias_changes() -> None:
    core, store = _core()
    first, second = _key("k1"), _key("k2")
    store.aliases = [_alias("alias/a", first), _alias("alias/b", first)]
    assert KeyFacts(core, first).aliases() == ("alias/a", "alias/b")
    assert KeyFacts(core, second).aliases() == ()
    assert KeyFacts(core, first).aliases() == ("alias/a", "alias/b")
    assert store.reads == 2
    # UpdateAlias moves alias/a: the change names the alias, and both keys read anew.
    store.aliases = [_alias("alias/a", second), _alias("alias/b", first)]
    core.cache.invalidate(ALIAS_ARN)
    assert KeyFacts(core, first).aliases() == ("alias/b",)
    assert KeyFacts(core, second).aliases() == ("alias/a",)
    assert store.reads == 4


def test_a_read_that_raced_a_change_is_not_kept() -> None:
    core, store = _core()
    key = _key("k1")
    store.tags[key.arn] = [Tag("project", "alpha")]
    store.during_read = lambda: core.cache.invalidate(key.arn)
    assert KeyFacts(core, key).tags() == {"project": "alpha"}
    assert core.cache.tags(key.arn) is None
    KeyFacts(core, key).tags()
    assert core.cache.tags(key.arn) == {"project": "alpha"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, {}),
        (False, {"kms:BypassPolicyLockoutSafetyCheck": "false"}),
        (True, {"kms:BypassPolicyLockoutSafetyCheck": "true"}),
    ],
)
def test_bypass_key_is_absent_unless_the_request_names_it(
    given: bool | None, expected: dict[str, str]
) -> None:
    assert bypass_context(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "SYMMETRIC_DEFAULT"),
        (EncryptionAlgorithm.SYMMETRIC_DEFAULT, "SYMMETRIC_DEFAULT"),
        (EncryptionAlgorithm.RSAES_OAEP_SHA_256, "RSAES_OAEP_SHA_256"),
    ],
)
def test_encryption_algorithm_defaults_to_symmetric_default(
    given: EncryptionAlgorithm | None, expected: str
) -> None:
    context = algorithm_context(given)
    assert context == {"kms:EncryptionAlgorithm": expected}
    assert type(context["kms:EncryptionAlgorithm"]) is str
