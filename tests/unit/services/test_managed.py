"""AWS managed keys: made once per alias even when two first uses race, and the predefined
aliases merged into ListAliases pages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from strongroom.domain.enums import KeyManager
from strongroom.domain.errors import StorageError
from strongroom.domain.managed import MANAGED_SERVICES
from strongroom.domain.models import Alias, Key, MaterialVersion
from strongroom.keystores.base import KeyStores
from strongroom.keystores.software import SoftwareKeyStore
from strongroom.services.cache import KeyCache
from strongroom.services.core import Core
from strongroom.services.managed import PredefinedAlias, managed_key_id, with_predefined

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 2, tzinfo=UTC)
ACCOUNT, REGION = "111122223333", "us-east-1"


class RootKey:
    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        return b"wrapped"

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        raise AssertionError("not used")


class Aliases:
    """Aliases buffered until commit; unique per (account, region, name)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.added: list[Alias] = []

    def get(self, account: str, region: str, name: str) -> Alias | None:
        if self.store.blind_reads:  # the other process has not committed yet
            self.store.blind_reads -= 1
            return None
        return self.store.aliases.get((account, region, name))

    def insert(self, alias: Alias) -> None:
        if (alias.account, alias.region, alias.name) in self.store.aliases:
            raise StorageError("database error: IntegrityError")
        self.added.append(alias)


class Keys:
    """Keys buffered until commit."""

    def __init__(self) -> None:
        self.added: list[Key] = []

    def insert(self, key: Key) -> None:
        self.added.append(key)

    def update(self, key: Key) -> None:
        self.added = [key if k.arn == key.arn else k for k in self.added]


class Material:
    def insert(self, arn: str, version: int, wrapped: bytes, now: datetime) -> None:
        pass

    def versions(self, arn: str) -> list[MaterialVersion]:
        return []

    def insert_version(self, info: MaterialVersion) -> None:
        pass


class Tx:
    """The repositories the managed-key path uses, writes buffered until commit."""

    def __init__(self, store: Store) -> None:
        self.aliases = Aliases(store)
        self.keys = Keys()
        self.material = Material()


class Store:
    def __init__(self) -> None:
        self.aliases: dict[tuple[str, str, str], Alias] = {}
        self.keys: dict[str, Key] = {}
        self.blind_reads = 0

    @contextmanager
    def read(self) -> Iterator[Tx]:
        yield Tx(self)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        tx = Tx(self)
        yield tx
        self.aliases.update({(a.account, a.region, a.name): a for a in tx.aliases.added})
        self.keys.update({k.arn: k for k in tx.keys.added})


def _core(store: Store) -> Core:
    keystores = KeyStores(SoftwareKeyStore(store, RootKey()))  # type: ignore[arg-type]
    return Core(
        store=store,  # type: ignore[arg-type]
        root_key=RootKey(),  # type: ignore[arg-type]
        cache=KeyCache(),
        keystores=keystores,
        clock=lambda: NOW,
    )


def test_first_use_creates_key_and_alias_together() -> None:
    store = Store()
    key_id = managed_key_id(_core(store), ACCOUNT, REGION, "alias/aws/s3")
    assert key_id is not None
    [key] = store.keys.values()
    assert (key.key_id, key.key_manager, key.account, key.region) == (
        key_id,
        KeyManager.AWS,
        ACCOUNT,
        REGION,
    )
    assert store.aliases[(ACCOUNT, REGION, "alias/aws/s3")].target_key_id == key_id
    assert managed_key_id(_core(store), ACCOUNT, REGION, "alias/aws/s3") == key_id
    assert len(store.keys) == 1


def test_losing_a_first_use_race_takes_the_winners_key() -> None:
    store = Store()
    winner = managed_key_id(_core(store), ACCOUNT, REGION, "alias/aws/ebs")
    store.blind_reads = 1  # this request read before the winner committed
    assert managed_key_id(_core(store), ACCOUNT, REGION, "alias/aws/ebs") == winner
    assert len(store.keys) == 1  # the loser's key was rolled back with its alias


def test_other_aliases_create_nothing() -> None:
    store = Store()
    for name in ("alias/aws/nope", "alias/s3", "alias/aws/"):
        assert managed_key_id(_core(store), ACCOUNT, REGION, name) is None
    assert store.keys == {}


def _alias(name: str) -> Alias:
    return Alias(f"arn:aws:kms:{REGION}:{ACCOUNT}:{name}", name, ACCOUNT, REGION, "k", NOW, NOW)


def _names(entries: list[Any]) -> list[str]:
    return [e.name for e in entries]


def test_predefined_aliases_fill_a_page_in_name_order() -> None:
    stored = [_alias("alias/a"), _alias("alias/aws/s3"), _alias("alias/z")]
    merged = with_predefined(stored, ACCOUNT, REGION, after=None, limit=100)
    assert _names(merged) == sorted({"alias/a", "alias/z", *MANAGED_SERVICES})
    s3 = [e for e in merged if e.name == "alias/aws/s3"]
    assert s3 == [stored[1]]  # the stored alias, with its key, not a predefined one
    ebs = next(e for e in merged if e.name == "alias/aws/ebs")
    assert ebs == PredefinedAlias("alias/aws/ebs", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/ebs")


def test_predefined_aliases_respect_marker_and_limit() -> None:
    merged = with_predefined([_alias("alias/b")], ACCOUNT, REGION, after="alias/aws/rds", limit=3)
    assert _names(merged) == ["alias/aws/s3", "alias/aws/secretsmanager", "alias/aws/sns"]
    # A full page of stored aliases before the predefined ones leaves no room for them.
    full = [_alias("alias/a1"), _alias("alias/a2")]
    assert with_predefined(full, ACCOUNT, REGION, after=None, limit=2) == full
