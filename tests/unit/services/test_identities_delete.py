"""Deleting users, roles and access keys: what goes with them, what blocks them, and the
change that tells every process to drop their cached credentials."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from strongroom.domain.errors import ConflictException, NotFoundException
from strongroom.domain.models import Tag
from strongroom.server.settings import Settings
from strongroom.server.wiring import build_core, prepare
from strongroom.services.core import Core
from strongroom.services.identities import (
    CredentialResolver,
    create_access_key,
    create_principal,
    delete_access_key,
    delete_principal,
    put_identity_policy,
    tag_principal,
)
from strongroom.services.sessions import issue_session, update_trust_policy

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"
POLICY = (
    '{"Version": "2012-10-17", '
    '"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}'
)
TRUST = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", '
    f'"Principal": {{"AWS": "arn:aws:iam::{ACCOUNT}:root"}}}}]}}'
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def core(tmp_path: Path, clock: Clock) -> Iterator[Core]:
    settings = Settings(data_dir=tmp_path / "data")
    prepare(settings)
    core = build_core(settings, clock)
    yield core
    core.store.close()


def _changed(core: Core) -> set[str]:
    return core.store.changes_since(0)[1]


def test_user_with_a_key_is_refused_then_forced(core: Core) -> None:
    user = create_principal(core, ACCOUNT, "user", "u")
    key = create_access_key(core, user.arn)
    with pytest.raises(ConflictException, match=key.access_key_id):
        delete_principal(core, "user", ACCOUNT, "u")
    deleted = delete_principal(core, "user", ACCOUNT, "u", force=True)
    assert deleted.access_key_ids == (key.access_key_id,)
    with core.store.transaction() as tx:
        assert tx.identities.get_principal(user.arn) is None
        assert tx.identities.get_access_key(key.access_key_id) is None
    assert user.arn in _changed(core)


def test_policies_tags_and_trust_policy_go_with_the_principal(core: Core) -> None:
    for kind, name in (("user", "u"), ("role", "r")):
        create_principal(core, ACCOUNT, kind, name)
        put_identity_policy(core, kind, ACCOUNT, name, "p", POLICY)
        tag_principal(core, kind, ACCOUNT, name, [Tag("team", "a")])
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    update_trust_policy(core, ACCOUNT, "r", TRUST)
    for kind, name in (("user", "u"), ("role", "r")):
        delete_principal(core, kind, ACCOUNT, name)
        arn = f"arn:aws:iam::{ACCOUNT}:{kind}/{name}"
        with core.store.transaction() as tx:
            assert tx.identities.get_policies(arn) == []
            assert tx.identities.get_tags(arn) == []
    with core.store.transaction() as tx:
        assert tx.identities.get_trust_policy(role) is None


def test_expired_sessions_do_not_block_deleting_a_role(core: Core, clock: Clock) -> None:
    role = create_principal(core, ACCOUNT, "role", "r")
    issued = issue_session(core, role.arn, "worker", 900)
    with pytest.raises(ConflictException, match="1 unexpired session"):
        delete_principal(core, "role", ACCOUNT, "r")
    clock.now += timedelta(seconds=900)
    assert delete_principal(core, "role", ACCOUNT, "r").session_access_key_ids == ()
    with core.store.transaction() as tx:
        assert tx.sessions.get(issued.access_key_id) is None


def test_deleting_unknown_principal_or_key_is_not_found(core: Core) -> None:
    with pytest.raises(NotFoundException):
        delete_principal(core, "user", ACCOUNT, "nobody")
    with pytest.raises(NotFoundException):
        delete_access_key(core, "AKIANOSUCHKEY0000000")


def test_resolver_forgets_deleted_credentials_through_the_change(core: Core) -> None:
    user = create_principal(core, ACCOUNT, "user", "u")
    key = create_access_key(core, user.arn)
    resolver = CredentialResolver(core)
    assert resolver.resolve(key.access_key_id) is not None
    delete_access_key(core, key.access_key_id)
    assert resolver.resolve(key.access_key_id) is not None  # cached until the change arrives
    for arn in _changed(core):  # what jobs.poll_changes does for an iam ARN
        resolver.forget_principal(arn)
    assert resolver.resolve(key.access_key_id) is None
