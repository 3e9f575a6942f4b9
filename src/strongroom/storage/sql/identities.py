"""Identities in SQL: accounts, principals, access keys, and what IAM attaches to users
and roles (inline policies, tags, trust policies, the maximum session duration)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from strongroom.domain.models import Principal, Tag
from strongroom.storage.ports import AccessKeyRecord
from strongroom.storage.schema import (
    access_keys,
    accounts,
    identity_policies,
    principal_tags,
    principals,
    role_trust_policies,
)


def _principal(row: sa.Row[Any]) -> Principal:
    return Principal(row.arn, row.account_id, row.kind, row.name)


def _access_key(row: sa.Row[Any]) -> AccessKeyRecord:
    return AccessKeyRecord(
        row.access_key_id, _principal(row), bytes(row.wrapped_secret), row.status
    )


_WITH_PRINCIPAL = sa.select(access_keys, principals).join(
    principals, principals.c.arn == access_keys.c.principal_arn
)


class SqlIdentities:
    """The IdentityRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def ensure_account(self, account: str, now: datetime) -> bool:
        """Create the account (and its root principal) unless it exists; True if created."""
        exists = self._c.execute(
            sa.select(accounts.c.account_id).where(accounts.c.account_id == account)
        ).first()
        if exists:
            return False
        self._c.execute(accounts.insert().values(account_id=account, created=now.timestamp()))
        self.insert_principal(
            Principal(f"arn:aws:iam::{account}:root", account, "root", "root"), now
        )
        return True

    def list_accounts(self) -> list[str]:
        q = sa.select(accounts.c.account_id).order_by(accounts.c.account_id)
        return [r[0] for r in self._c.execute(q)]

    def insert_principal(self, principal: Principal, now: datetime) -> None:
        self._c.execute(
            principals.insert().values(
                arn=principal.arn,
                account_id=principal.account,
                kind=principal.kind,
                name=principal.name,
                created=now.timestamp(),
            )
        )

    def get_principal(self, arn: str) -> Principal | None:
        row = self._c.execute(sa.select(principals).where(principals.c.arn == arn)).first()
        return None if row is None else _principal(row)

    def list_principals(self, account: str | None) -> list[Principal]:
        q = sa.select(principals).order_by(principals.c.arn)
        if account is not None:
            q = q.where(principals.c.account_id == account)
        return [_principal(r) for r in self._c.execute(q)]

    def insert_access_key(self, record: AccessKeyRecord, now: datetime) -> None:
        self._c.execute(
            access_keys.insert().values(
                access_key_id=record.access_key_id,
                principal_arn=record.principal.arn,
                wrapped_secret=record.wrapped_secret,
                status=record.status,
                created=now.timestamp(),
            )
        )

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None:
        q = _WITH_PRINCIPAL.where(access_keys.c.access_key_id == access_key_id)
        row = self._c.execute(q).first()
        return None if row is None else _access_key(row)

    def list_access_keys(self, principal_arn: str | None) -> list[AccessKeyRecord]:
        q = _WITH_PRINCIPAL
        if principal_arn is not None:
            q = q.where(access_keys.c.principal_arn == principal_arn)
        return [_access_key(r) for r in self._c.execute(q.order_by(access_keys.c.access_key_id))]

    def delete_access_key(self, access_key_id: str) -> bool:
        res = self._c.execute(
            access_keys.delete().where(access_keys.c.access_key_id == access_key_id)
        )
        return bool(res.rowcount)

    def put_policy(
        self, principal_arn: str, policy_name: str, document: str, now: datetime
    ) -> None:
        """Create or replace one inline policy of a user or role."""
        self.delete_policy(principal_arn, policy_name)
        self._c.execute(
            identity_policies.insert().values(
                principal_arn=principal_arn,
                policy_name=policy_name,
                document=document,
                created=now.timestamp(),
            )
        )

    def get_policies(self, principal_arn: str) -> list[tuple[str, str]]:
        """A principal's inline policies as (name, document), by name."""
        q = (
            sa.select(identity_policies.c.policy_name, identity_policies.c.document)
            .where(identity_policies.c.principal_arn == principal_arn)
            .order_by(identity_policies.c.policy_name)
        )
        return [(r.policy_name, r.document) for r in self._c.execute(q)]

    def delete_policy(self, principal_arn: str, policy_name: str) -> bool:
        res = self._c.execute(
            identity_policies.delete().where(
                identity_policies.c.principal_arn == principal_arn,
                identity_policies.c.policy_name == policy_name,
            )
        )
        return bool(res.rowcount)

    def get_tags(self, principal_arn: str) -> list[Tag]:
        q = (
            sa.select(principal_tags.c.tag_key, principal_tags.c.tag_value)
            .where(principal_tags.c.principal_arn == principal_arn)
            .order_by(principal_tags.c.tag_key)
        )
        return [Tag(r.tag_key, r.tag_value) for r in self._c.execute(q)]

    def set_tags(self, principal_arn: str, tags: Sequence[Tag]) -> None:
        self._c.execute(
            principal_tags.delete().where(principal_tags.c.principal_arn == principal_arn)
        )
        if tags:
            self._c.execute(
                principal_tags.insert(),
                [
                    {"principal_arn": principal_arn, "tag_key": t.key, "tag_value": t.value}
                    for t in tags
                ],
            )

    def get_trust_policy(self, role_arn: str) -> str | None:
        q = sa.select(role_trust_policies.c.document).where(
            role_trust_policies.c.role_arn == role_arn
        )
        found = self._c.execute(q).scalar()
        return None if found is None else str(found)

    def put_trust_policy(self, role_arn: str, document: str, now: datetime) -> None:
        self._c.execute(
            role_trust_policies.delete().where(role_trust_policies.c.role_arn == role_arn)
        )
        self._c.execute(
            role_trust_policies.insert().values(
                role_arn=role_arn, document=document, updated=now.timestamp()
            )
        )

    def get_max_session_duration(self, role_arn: str) -> int | None:
        q = sa.select(principals.c.max_session_duration).where(principals.c.arn == role_arn)
        found = self._c.execute(q).scalar()
        return None if found is None else int(found)

    def set_max_session_duration(self, role_arn: str, seconds: int) -> None:
        self._c.execute(
            principals.update()
            .where(principals.c.arn == role_arn)
            .values(max_session_duration=seconds)
        )

    def delete_principal(self, arn: str) -> bool:
        """Delete a user or role with its access keys, inline policies, tags and trust
        policy; False when there was no such principal."""
        for table, column in (
            (access_keys, access_keys.c.principal_arn),
            (identity_policies, identity_policies.c.principal_arn),
            (principal_tags, principal_tags.c.principal_arn),
            (role_trust_policies, role_trust_policies.c.role_arn),
        ):
            self._c.execute(table.delete().where(column == arn))
        res = self._c.execute(principals.delete().where(principals.c.arn == arn))
        return bool(res.rowcount)
