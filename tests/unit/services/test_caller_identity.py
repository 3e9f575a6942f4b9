"""STS GetCallerIdentity's answer for each kind of caller: UserId as aws:userid in the IAM
User Guide's policy-variables principal table (a user's unique id, ROLE_ID:SESSION for a
role session, the account id for the account root), Account and Arn."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strongroom.domain.ids import role_unique_id, user_unique_id
from strongroom.domain.models import Caller, Principal, RoleSession
from strongroom.services.caller_identity import CallerIdentity, get_caller_identity

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"


def _caller(principal: Principal, session: RoleSession | None = None) -> Caller:
    return Caller(principal, "AKIAEXAMPLE", "us-east-1", "127.0.0.1", "test", session=session)


def test_a_user_is_named_by_its_unique_id() -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:user/alice"
    identity = get_caller_identity(_caller(Principal(arn, ACCOUNT, "user", "alice")))
    assert identity == CallerIdentity(user_unique_id(arn), ACCOUNT, arn)
    # IAM "Unique identifiers": AIDA and 17 characters, e.g. AIDACKCEVSQ6C2EXAMPLE.
    assert identity.user_id.startswith("AIDA") and len(identity.user_id) == 21
    assert identity.user_id != user_unique_id(f"arn:aws:iam::{ACCOUNT}:user/bob")


def test_a_role_session_is_named_by_role_id_and_session_name() -> None:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/app"
    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/web-1"
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    session = RoleSession(role_arn, role_unique_id(role_arn), "web-1", moment, moment)
    principal = Principal(arn, ACCOUNT, "assumed-role", "app/web-1")
    identity = get_caller_identity(_caller(principal, session))
    assert identity == CallerIdentity(f"{role_unique_id(role_arn)}:web-1", ACCOUNT, arn)


def test_the_account_root_is_named_by_the_account_id() -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:root"
    identity = get_caller_identity(_caller(Principal(arn, ACCOUNT, "root", "root")))
    assert identity == CallerIdentity(ACCOUNT, ACCOUNT, arn)
