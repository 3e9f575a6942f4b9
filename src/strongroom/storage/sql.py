"""SQLAlchemy Core implementation of the storage ports, for SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from strongroom.domain.enums import (
    ExpirationModel,
    ImportState,
    KeyManager,
    KeyMaterialState,
    KeySpec,
    KeyState,
    KeyUsage,
    Origin,
    RotationType,
    WrappingAlgorithm,
    WrappingKeySpec,
)
from strongroom.domain.errors import StorageError
from strongroom.domain.models import Alias, Grant, Key, MaterialVersion, Principal, Tag
from strongroom.storage import migrate
from strongroom.storage.ports import AccessKeyRecord, ImportTokenRecord, SessionRecord
from strongroom.storage.schema import (
    access_keys,
    accounts,
    aliases,
    changes,
    grants,
    identity_policies,
    import_tokens,
    key_material_versions,
    key_materials,
    keys,
    principal_tags,
    principals,
    role_sessions,
    role_trust_policies,
    tags,
)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _key(row: sa.Row[Any]) -> Key:
    return Key(
        arn=row.arn,
        key_id=row.key_id,
        account=row.account_id,
        region=row.region,
        state=KeyState(row.state),
        description=row.description,
        key_usage=KeyUsage(row.key_usage),
        key_spec=KeySpec(row.key_spec),
        origin=Origin(row.origin),
        key_manager=KeyManager(row.key_manager),
        multi_region=bool(row.multi_region),
        policy=row.policy,
        creation_date=datetime.fromtimestamp(row.creation_date, UTC),
        current_version=row.current_version,
        deletion_date=_dt(row.deletion_date),
        pending_window_days=row.pending_window_days,
        primary_region=row.primary_region,
        rotation_period_days=row.rotation_period_days,
        next_rotation_date=_dt(row.next_rotation_date),
        current_material_id=row.current_material_id,
        expiration_model=_enum(ExpirationModel, row.expiration_model),
        valid_to=_dt(row.valid_to),
    )


def _key_values(key: Key) -> dict[str, Any]:
    return {
        "arn": key.arn,
        "key_id": key.key_id,
        "account_id": key.account,
        "region": key.region,
        "state": key.state.value,
        "description": key.description,
        "key_usage": key.key_usage.value,
        "key_spec": key.key_spec.value,
        "origin": key.origin.value,
        "key_manager": key.key_manager.value,
        "multi_region": key.multi_region,
        "policy": key.policy,
        "creation_date": key.creation_date.timestamp(),
        "current_version": key.current_version,
        "deletion_date": _ts(key.deletion_date),
        "pending_window_days": key.pending_window_days,
        "primary_region": key.primary_region,
        "rotation_period_days": key.rotation_period_days,
        "next_rotation_date": _ts(key.next_rotation_date),
        "current_material_id": key.current_material_id,
        "expiration_model": _value(key.expiration_model),
        "valid_to": _ts(key.valid_to),
    }


E = TypeVar("E", bound=StrEnum)


def _enum(kind: type[E], value: str | None) -> E | None:
    return None if value is None else kind(value)


def _value(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


def _material_version(row: sa.Row[Any]) -> MaterialVersion:
    return MaterialVersion(
        key_arn=row.key_arn,
        version=row.version,
        material_id=row.material_id,
        state=KeyMaterialState(row.state),
        created=datetime.fromtimestamp(row.created, UTC),
        rotation_date=_dt(row.rotation_date),
        rotation_type=_enum(RotationType, row.rotation_type),
        import_state=_enum(ImportState, row.import_state),
        expiration_model=_enum(ExpirationModel, row.expiration_model),
        valid_to=_dt(row.valid_to),
        description=row.description,
    )


def _material_version_values(info: MaterialVersion) -> dict[str, Any]:
    return {
        "key_arn": info.key_arn,
        "version": info.version,
        "material_id": info.material_id,
        "state": info.state.value,
        "created": info.created.timestamp(),
        "rotation_date": _ts(info.rotation_date),
        "rotation_type": _value(info.rotation_type),
        "import_state": _value(info.import_state),
        "expiration_model": _value(info.expiration_model),
        "valid_to": _ts(info.valid_to),
        "description": info.description,
    }


def _alias(row: sa.Row[Any]) -> Alias:
    return Alias(
        arn=f"arn:aws:kms:{row.region}:{row.account_id}:{row.name}",
        name=row.name,
        account=row.account_id,
        region=row.region,
        target_key_id=row.target_key_id,
        creation_date=datetime.fromtimestamp(row.creation_date, UTC),
        last_updated_date=datetime.fromtimestamp(row.last_updated_date, UTC),
    )


_EQUALS, _SUBSET = "EncryptionContextEquals", "EncryptionContextSubset"


def _grant(row: sa.Row[Any]) -> Grant:
    context = None if row.constraint_context is None else json.loads(row.constraint_context)
    return Grant(
        grant_id=row.grant_id,
        key_arn=row.key_arn,
        grantee_principal=row.grantee_principal,
        operations=tuple(json.loads(row.operations)),
        issuing_account=row.issuing_account,
        creation_date=datetime.fromtimestamp(row.creation_date, UTC),
        retiring_principal=row.retiring_principal,
        encryption_context_equals=context if row.constraint_type == _EQUALS else None,
        encryption_context_subset=context if row.constraint_type == _SUBSET else None,
        name=row.name,
    )


def _grant_values(grant: Grant) -> dict[str, Any]:
    kind, context = None, None
    if grant.encryption_context_equals is not None:
        kind, context = _EQUALS, grant.encryption_context_equals
    elif grant.encryption_context_subset is not None:
        kind, context = _SUBSET, grant.encryption_context_subset
    return {
        "grant_id": grant.grant_id,
        "key_arn": grant.key_arn,
        "grantee_principal": grant.grantee_principal,
        "retiring_principal": grant.retiring_principal,
        "operations": json.dumps(list(grant.operations)),
        "constraint_type": kind,
        "constraint_context": None if context is None else json.dumps(dict(context)),
        "name": grant.name,
        "issuing_account": grant.issuing_account,
        "creation_date": grant.creation_date.timestamp(),
    }


def _after(q: sa.Select[Any], after: tuple[datetime, str] | None) -> sa.Select[Any]:
    """Rows after the (creation date, grant id) position ``after``, in that order."""
    if after is not None:
        anchor, grant_id = after[0].timestamp(), after[1]
        q = q.where(
            sa.or_(
                grants.c.creation_date > anchor,
                sa.and_(grants.c.creation_date == anchor, grants.c.grant_id > grant_id),
            )
        )
    return q.order_by(grants.c.creation_date, grants.c.grant_id)


class SqlTransaction:
    """One database transaction; every method runs inside it."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    # -- keys ---------------------------------------------------------------------------
    def get_key(self, arn: str, *, for_update: bool = False) -> Key | None:
        q = sa.select(keys).where(keys.c.arn == arn)
        if for_update:
            q = q.with_for_update()
        row = self._c.execute(q).first()
        return None if row is None else _key(row)

    def insert_key(self, key: Key) -> None:
        self._c.execute(keys.insert().values(**_key_values(key)))

    def update_key(self, key: Key) -> None:
        self._c.execute(keys.update().where(keys.c.arn == key.arn).values(**_key_values(key)))

    def delete_key(self, key: Key) -> list[str]:
        """Delete a key with its material (and what is known of it), import tokens, tags,
        grants and aliases; returns the deleted aliases' ARNs."""
        own_aliases = (
            aliases.c.account_id == key.account,
            aliases.c.region == key.region,
            aliases.c.target_key_id == key.key_id,
        )
        names = self._c.execute(sa.select(aliases.c.name).where(*own_aliases)).scalars().all()
        self._c.execute(key_materials.delete().where(key_materials.c.key_arn == key.arn))
        self._c.execute(
            key_material_versions.delete().where(key_material_versions.c.key_arn == key.arn)
        )
        self._c.execute(import_tokens.delete().where(import_tokens.c.key_arn == key.arn))
        self._c.execute(tags.delete().where(tags.c.key_arn == key.arn))
        self._c.execute(grants.delete().where(grants.c.key_arn == key.arn))
        self._c.execute(aliases.delete().where(*own_aliases))
        self._c.execute(keys.delete().where(keys.c.arn == key.arn))
        return [f"arn:aws:kms:{key.region}:{key.account}:{name}" for name in names]

    def list_keys(
        self, account: str, region: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[Key]:
        """Keys of an account and region in (creation date, ARN) order, after ``after``."""
        q = sa.select(keys).where(keys.c.account_id == account, keys.c.region == region)
        if after is not None:
            anchor, arn = after[0].timestamp(), after[1]
            q = q.where(
                sa.or_(
                    keys.c.creation_date > anchor,
                    sa.and_(keys.c.creation_date == anchor, keys.c.arn > arn),
                )
            )
        q = q.order_by(keys.c.creation_date, keys.c.arn).limit(limit)
        return [_key(r) for r in self._c.execute(q)]

    def related_keys(self, account: str, key_id: str, *, for_update: bool = False) -> list[Key]:
        """Every key of an account with this key id, in every Region, by Region: a
        multi-Region key's primary and replicas."""
        q = (
            sa.select(keys)
            .where(keys.c.account_id == account, keys.c.key_id == key_id)
            .order_by(keys.c.region)
        )
        if for_update:
            q = q.with_for_update()
        return [_key(r) for r in self._c.execute(q)]

    def keys_due_for_deletion(self, now: datetime) -> list[Key]:
        q = sa.select(keys).where(
            keys.c.state == KeyState.PENDING_DELETION.value,
            keys.c.deletion_date <= now.timestamp(),
        )
        return [_key(r) for r in self._c.execute(q)]

    # -- key material -------------------------------------------------------------------
    def insert_material(self, key_arn: str, version: int, wrapped: bytes, now: datetime) -> None:
        self._c.execute(
            key_materials.insert().values(
                key_arn=key_arn, version=version, wrapped=wrapped, created=now.timestamp()
            )
        )

    def get_material(self, key_arn: str, version: int) -> bytes | None:
        q = sa.select(key_materials.c.wrapped).where(
            key_materials.c.key_arn == key_arn, key_materials.c.version == version
        )
        value = self._c.execute(q).scalar()
        return None if value is None else bytes(value)

    def delete_material(self, key_arn: str, version: int) -> None:
        self._c.execute(
            key_materials.delete().where(
                key_materials.c.key_arn == key_arn, key_materials.c.version == version
            )
        )

    def insert_material_version(self, info: MaterialVersion) -> None:
        self._c.execute(key_material_versions.insert().values(**_material_version_values(info)))

    def update_material_version(self, info: MaterialVersion) -> None:
        self._c.execute(
            key_material_versions.update()
            .where(
                key_material_versions.c.key_arn == info.key_arn,
                key_material_versions.c.version == info.version,
            )
            .values(**_material_version_values(info))
        )

    def delete_material_version(self, key_arn: str, version: int) -> None:
        self._c.execute(
            key_material_versions.delete().where(
                key_material_versions.c.key_arn == key_arn,
                key_material_versions.c.version == version,
            )
        )

    def list_material_versions(self, key_arn: str) -> list[MaterialVersion]:
        q = (
            sa.select(key_material_versions)
            .where(key_material_versions.c.key_arn == key_arn)
            .order_by(key_material_versions.c.version)
        )
        return [_material_version(r) for r in self._c.execute(q)]

    def keys_due_for_rotation(self, now: datetime) -> list[Key]:
        q = sa.select(keys).where(
            keys.c.state == KeyState.ENABLED.value,
            keys.c.next_rotation_date <= now.timestamp(),
        )
        return [_key(r) for r in self._c.execute(q)]

    def materials_due_to_expire(self, now: datetime) -> list[MaterialVersion]:
        q = sa.select(key_material_versions).where(
            key_material_versions.c.import_state == ImportState.IMPORTED.value,
            key_material_versions.c.valid_to <= now.timestamp(),
        )
        return [_material_version(r) for r in self._c.execute(q)]

    # -- import tokens ------------------------------------------------------------------
    def insert_import_token(self, record: ImportTokenRecord) -> None:
        self._c.execute(
            import_tokens.insert().values(
                token_digest=record.token_digest,
                key_arn=record.key_arn,
                wrapping_algorithm=record.wrapping_algorithm.value,
                wrapping_key_spec=record.wrapping_key_spec.value,
                wrapped_private_key=record.wrapped_private_key,
                valid_to=record.valid_to.timestamp(),
                created=record.created.timestamp(),
            )
        )

    def get_import_token(self, token_digest: str) -> ImportTokenRecord | None:
        q = sa.select(import_tokens).where(import_tokens.c.token_digest == token_digest)
        row = self._c.execute(q).first()
        if row is None:
            return None
        return ImportTokenRecord(
            token_digest=row.token_digest,
            key_arn=row.key_arn,
            wrapping_algorithm=WrappingAlgorithm(row.wrapping_algorithm),
            wrapping_key_spec=WrappingKeySpec(row.wrapping_key_spec),
            wrapped_private_key=bytes(row.wrapped_private_key),
            valid_to=datetime.fromtimestamp(row.valid_to, UTC),
            created=datetime.fromtimestamp(row.created, UTC),
        )

    def prune_import_tokens(self, before: datetime) -> None:
        self._c.execute(import_tokens.delete().where(import_tokens.c.valid_to < before.timestamp()))

    # -- aliases ------------------------------------------------------------------------
    def get_alias(self, account: str, region: str, name: str) -> Alias | None:
        q = sa.select(aliases).where(
            aliases.c.account_id == account, aliases.c.region == region, aliases.c.name == name
        )
        row = self._c.execute(q).first()
        return None if row is None else _alias(row)

    def insert_alias(self, alias: Alias) -> None:
        self._c.execute(
            aliases.insert().values(
                account_id=alias.account,
                region=alias.region,
                name=alias.name,
                target_key_id=alias.target_key_id,
                creation_date=alias.creation_date.timestamp(),
                last_updated_date=alias.last_updated_date.timestamp(),
            )
        )

    def update_alias(self, alias: Alias) -> None:
        self._c.execute(
            aliases.update()
            .where(
                aliases.c.account_id == alias.account,
                aliases.c.region == alias.region,
                aliases.c.name == alias.name,
            )
            .values(
                target_key_id=alias.target_key_id,
                last_updated_date=alias.last_updated_date.timestamp(),
            )
        )

    def delete_alias(self, alias: Alias) -> None:
        self._c.execute(
            aliases.delete().where(
                aliases.c.account_id == alias.account,
                aliases.c.region == alias.region,
                aliases.c.name == alias.name,
            )
        )

    def list_aliases(
        self, account: str, region: str, *, key_id: str | None, after: str | None, limit: int
    ) -> list[Alias]:
        q = sa.select(aliases).where(aliases.c.account_id == account, aliases.c.region == region)
        if key_id is not None:
            q = q.where(aliases.c.target_key_id == key_id)
        if after is not None:
            q = q.where(aliases.c.name > after)
        q = q.order_by(aliases.c.name).limit(limit)
        return [_alias(r) for r in self._c.execute(q)]

    def count_aliases(self, account: str, region: str, key_id: str) -> int:
        q = sa.select(sa.func.count()).where(
            aliases.c.account_id == account,
            aliases.c.region == region,
            aliases.c.target_key_id == key_id,
        )
        return int(self._c.execute(q).scalar_one())

    # -- tags ---------------------------------------------------------------------------
    def get_tags(self, key_arn: str) -> list[Tag]:
        q = sa.select(tags).where(tags.c.key_arn == key_arn).order_by(tags.c.tag_key)
        return [Tag(r.tag_key, r.tag_value) for r in self._c.execute(q)]

    def put_tags(self, key_arn: str, new: Iterable[Tag]) -> None:
        new = list(new)
        if not new:
            return
        self.delete_tags(key_arn, [t.key for t in new])
        self._c.execute(
            tags.insert(),
            [{"key_arn": key_arn, "tag_key": t.key, "tag_value": t.value} for t in new],
        )

    def delete_tags(self, key_arn: str, tag_keys: Sequence[str]) -> None:
        self._c.execute(
            tags.delete().where(tags.c.key_arn == key_arn, tags.c.tag_key.in_(list(tag_keys)))
        )

    # -- grants -------------------------------------------------------------------------
    def insert_grant(self, grant: Grant) -> None:
        self._c.execute(grants.insert().values(**_grant_values(grant)))

    def get_grant(self, grant_id: str) -> Grant | None:
        row = self._c.execute(sa.select(grants).where(grants.c.grant_id == grant_id)).first()
        return None if row is None else _grant(row)

    def delete_grant(self, grant_id: str) -> bool:
        res = self._c.execute(grants.delete().where(grants.c.grant_id == grant_id))
        return bool(res.rowcount)

    def list_grants(
        self,
        key_arn: str,
        *,
        grant_id: str | None = None,
        grantee_principal: str | None = None,
        name: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int | None = None,
    ) -> list[Grant]:
        q = sa.select(grants).where(grants.c.key_arn == key_arn)
        if grant_id is not None:
            q = q.where(grants.c.grant_id == grant_id)
        if grantee_principal is not None:
            q = q.where(grants.c.grantee_principal == grantee_principal)
        if name is not None:
            q = q.where(grants.c.name == name)
        q = _after(q, after)
        if limit is not None:
            q = q.limit(limit)
        return [_grant(r) for r in self._c.execute(q)]

    def list_retirable_grants(
        self,
        retiring_principal: str,
        region: str,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Grant]:
        q = (
            sa.select(grants)
            .join(keys, keys.c.arn == grants.c.key_arn)
            .where(grants.c.retiring_principal == retiring_principal, keys.c.region == region)
        )
        return [_grant(r) for r in self._c.execute(_after(q, after).limit(limit))]

    def count_grants(self, key_arn: str, grantee_principal: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(grants).where(grants.c.key_arn == key_arn)
        if grantee_principal is not None:
            q = q.where(grants.c.grantee_principal == grantee_principal)
        return int(self._c.execute(q).scalar_one())

    # -- change feed --------------------------------------------------------------------
    def record_change(self, key_arn: str, now: datetime) -> None:
        self._c.execute(changes.insert().values(key_arn=key_arn, changed_at=now.timestamp()))

    def prune_changes(self, before: datetime) -> None:
        """Forget changes older than every process's poll could still need."""
        self._c.execute(changes.delete().where(changes.c.changed_at < before.timestamp()))

    # -- identities ---------------------------------------------------------------------
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
        return None if row is None else Principal(row.arn, row.account_id, row.kind, row.name)

    def list_principals(self, account: str | None) -> list[Principal]:
        q = sa.select(principals).order_by(principals.c.arn)
        if account is not None:
            q = q.where(principals.c.account_id == account)
        return [Principal(r.arn, r.account_id, r.kind, r.name) for r in self._c.execute(q)]

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
        q = (
            sa.select(access_keys, principals)
            .join(principals, principals.c.arn == access_keys.c.principal_arn)
            .where(access_keys.c.access_key_id == access_key_id)
        )
        row = self._c.execute(q).first()
        if row is None:
            return None
        principal = Principal(row.arn, row.account_id, row.kind, row.name)
        return AccessKeyRecord(row.access_key_id, principal, bytes(row.wrapped_secret), row.status)

    def list_access_keys(self, principal_arn: str | None) -> list[AccessKeyRecord]:
        q = sa.select(access_keys, principals).join(
            principals, principals.c.arn == access_keys.c.principal_arn
        )
        if principal_arn is not None:
            q = q.where(access_keys.c.principal_arn == principal_arn)
        return [
            AccessKeyRecord(
                r.access_key_id,
                Principal(r.arn, r.account_id, r.kind, r.name),
                bytes(r.wrapped_secret),
                r.status,
            )
            for r in self._c.execute(q.order_by(access_keys.c.access_key_id))
        ]

    def delete_access_key(self, access_key_id: str) -> bool:
        res = self._c.execute(
            access_keys.delete().where(access_keys.c.access_key_id == access_key_id)
        )
        return bool(res.rowcount)

    def put_identity_policy(
        self, principal_arn: str, policy_name: str, document: str, now: datetime
    ) -> None:
        """Create or replace one inline policy of a user or role."""
        self.delete_identity_policy(principal_arn, policy_name)
        self._c.execute(
            identity_policies.insert().values(
                principal_arn=principal_arn,
                policy_name=policy_name,
                document=document,
                created=now.timestamp(),
            )
        )

    def get_identity_policies(self, principal_arn: str) -> list[tuple[str, str]]:
        """A principal's inline policies as (name, document), by name."""
        q = (
            sa.select(identity_policies.c.policy_name, identity_policies.c.document)
            .where(identity_policies.c.principal_arn == principal_arn)
            .order_by(identity_policies.c.policy_name)
        )
        return [(r.policy_name, r.document) for r in self._c.execute(q)]

    def delete_identity_policy(self, principal_arn: str, policy_name: str) -> bool:
        res = self._c.execute(
            identity_policies.delete().where(
                identity_policies.c.principal_arn == principal_arn,
                identity_policies.c.policy_name == policy_name,
            )
        )
        return bool(res.rowcount)

    def get_principal_tags(self, principal_arn: str) -> list[Tag]:
        q = (
            sa.select(principal_tags.c.tag_key, principal_tags.c.tag_value)
            .where(principal_tags.c.principal_arn == principal_arn)
            .order_by(principal_tags.c.tag_key)
        )
        return [Tag(r.tag_key, r.tag_value) for r in self._c.execute(q)]

    def set_principal_tags(self, principal_arn: str, new: Sequence[Tag]) -> None:
        self._c.execute(
            principal_tags.delete().where(principal_tags.c.principal_arn == principal_arn)
        )
        if new:
            self._c.execute(
                principal_tags.insert(),
                [
                    {"principal_arn": principal_arn, "tag_key": t.key, "tag_value": t.value}
                    for t in new
                ],
            )

    def get_trust_policy(self, role_arn: str) -> str | None:
        q = sa.select(role_trust_policies.c.document).where(
            role_trust_policies.c.role_arn == role_arn
        )
        value = self._c.execute(q).scalar()
        return None if value is None else str(value)

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
        value = self._c.execute(q).scalar()
        return None if value is None else int(value)

    def set_max_session_duration(self, role_arn: str, seconds: int) -> None:
        self._c.execute(
            principals.update()
            .where(principals.c.arn == role_arn)
            .values(max_session_duration=seconds)
        )

    def insert_session(self, record: SessionRecord) -> None:
        self._c.execute(
            role_sessions.insert().values(
                access_key_id=record.access_key_id,
                role_arn=record.role.arn,
                session_name=record.session_name,
                wrapped_secret=record.wrapped_secret,
                token_sha256=record.token_sha256,
                created=record.created.timestamp(),
                expiration=record.expiration.timestamp(),
            )
        )

    def get_session(self, access_key_id: str) -> SessionRecord | None:
        q = (
            sa.select(
                role_sessions,
                principals.c.arn,
                principals.c.account_id,
                principals.c.kind,
                principals.c.name,
            )
            .join(principals, principals.c.arn == role_sessions.c.role_arn)
            .where(role_sessions.c.access_key_id == access_key_id)
        )
        r = self._c.execute(q).first()
        if r is None:
            return None
        return SessionRecord(
            access_key_id=r.access_key_id,
            role=Principal(r.arn, r.account_id, r.kind, r.name),
            session_name=r.session_name,
            wrapped_secret=bytes(r.wrapped_secret),
            token_sha256=bytes(r.token_sha256),
            created=datetime.fromtimestamp(r.created, UTC),
            expiration=datetime.fromtimestamp(r.expiration, UTC),
        )

    def delete_sessions_expired_before(self, moment: datetime) -> int:
        res = self._c.execute(
            role_sessions.delete().where(role_sessions.c.expiration < moment.timestamp())
        )
        return int(res.rowcount or 0)


class SqlStore:
    """The database: SQLite (WAL, the default) or PostgreSQL (psycopg 3)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        """A transaction that commits when the block ends and rolls back on any error."""
        try:
            with self.engine.begin() as conn:
                yield SqlTransaction(conn)
        except SQLAlchemyError as exc:
            raise StorageError(f"database error: {type(exc).__name__}") from exc

    def latest_change(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(changes.c.seq), 0))
                ).scalar_one()
            )

    def keys_in_state(self, state: KeyState) -> list[str]:
        """The ARNs of the keys in ``state``, read without taking the write lock."""
        with self.engine.connect() as conn:
            q = sa.select(keys.c.arn).where(keys.c.state == state.value).order_by(keys.c.arn)
            return list(conn.execute(q).scalars())

    def changes_since(self, seq: int) -> tuple[int, set[str]]:
        """The newest change seq and the key ARNs changed after ``seq``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(changes.c.seq, changes.c.key_arn).where(changes.c.seq > seq)
            ).all()
        if not rows:
            return seq, set()
        return max(r.seq for r in rows), {r.key_arn for r in rows}

    def close(self) -> None:
        self.engine.dispose()


def _make_engine(url: str) -> sa.Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when a transaction begins (SQLAlchemy
        # docs, "Serializable isolation / Savepoints / Transactional DDL" for pysqlite).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # Deleted rows are overwritten with zeros, not left in free pages: deleting imported
        # key material (its wrapped copy) is meant to erase it (SQLite "PRAGMA secure_delete").
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Take the write lock up front: a deferred transaction that later writes can
        # fail with SQLITE_BUSY instead of waiting its turn.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
