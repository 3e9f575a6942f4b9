"""Parameter Store parameters in SQL: the ``ssm_parameters``, ``ssm_parameter_versions`` and
``ssm_parameter_tags`` tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from strongroom.domain.models import Tag
from strongroom.domain.parameters import ParameterTier, ParameterType, ParameterVersion
from strongroom.storage.schema import ssm_parameter_tags as tags_table
from strongroom.storage.schema import ssm_parameter_versions as versions
from strongroom.storage.schema import ssm_parameters as parameters
from strongroom.storage.sql._rows import dt


def _version(row: sa.Row[Any]) -> ParameterVersion:
    modified = dt(row.modified)
    assert modified is not None
    return ParameterVersion(
        account=row.account_id,
        region=row.region,
        name=row.name,
        version=row.version,
        type=ParameterType(row.type),
        value=row.value,
        ciphertext=row.ciphertext,
        key_id=row.key_id,
        description=row.description,
        allowed_pattern=row.allowed_pattern,
        tier=ParameterTier(row.tier),
        data_type=row.data_type,
        modified=modified,
        modified_user=row.modified_user,
    )


def _named(table: sa.Table, account: str, region: str, name: str) -> tuple[Any, ...]:
    return (table.c.account_id == account, table.c.region == region, table.c.name == name)


_LATEST = versions.join(
    parameters,
    sa.and_(
        versions.c.account_id == parameters.c.account_id,
        versions.c.region == parameters.c.region,
        versions.c.name == parameters.c.name,
        versions.c.version == parameters.c.current_version,
    ),
)


class SqlParameters:
    """The ParameterRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def latest(
        self, account: str, region: str, name: str, *, for_update: bool = False
    ) -> ParameterVersion | None:
        q = (
            sa.select(versions)
            .select_from(_LATEST)
            .where(*_named(parameters, account, region, name))
        )
        if for_update:
            q = q.with_for_update()
        row = self._c.execute(q).first()
        return None if row is None else _version(row)

    def version(
        self, account: str, region: str, name: str, version: int
    ) -> ParameterVersion | None:
        q = sa.select(versions).where(
            *_named(versions, account, region, name), versions.c.version == version
        )
        row = self._c.execute(q).first()
        return None if row is None else _version(row)

    def history(self, account: str, region: str, name: str) -> list[ParameterVersion]:
        q = (
            sa.select(versions)
            .where(*_named(versions, account, region, name))
            .order_by(versions.c.version)
        )
        return [_version(r) for r in self._c.execute(q)]

    def put(self, version: ParameterVersion, *, keep: int) -> None:
        owner = _named(parameters, version.account, version.region, version.name)
        row = {
            "account_id": version.account,
            "region": version.region,
            "name": version.name,
        }
        updated = self._c.execute(
            parameters.update().where(*owner).values(current_version=version.version)
        )
        if updated.rowcount == 0:
            self._c.execute(parameters.insert().values(**row, current_version=version.version))
        self._c.execute(
            versions.insert().values(
                **row,
                version=version.version,
                type=version.type.value,
                value=version.value,
                ciphertext=version.ciphertext,
                key_id=version.key_id,
                description=version.description,
                allowed_pattern=version.allowed_pattern,
                tier=version.tier.value,
                data_type=version.data_type,
                modified=version.modified.timestamp(),
                modified_user=version.modified_user,
            )
        )
        self._c.execute(
            versions.delete().where(
                *_named(versions, version.account, version.region, version.name),
                versions.c.version <= version.version - keep,
            )
        )

    def delete(self, account: str, region: str, name: str) -> bool:
        self._c.execute(tags_table.delete().where(*_named(tags_table, account, region, name)))
        self._c.execute(versions.delete().where(*_named(versions, account, region, name)))
        gone = self._c.execute(
            parameters.delete().where(*_named(parameters, account, region, name))
        )
        return gone.rowcount > 0

    def list_latest(
        self, account: str, region: str, *, prefix: str, after: str | None, limit: int
    ) -> list[ParameterVersion]:
        q = (
            sa.select(versions)
            .select_from(_LATEST)
            .where(parameters.c.account_id == account, parameters.c.region == region)
        )
        if prefix:
            # Names hold only [a-zA-Z0-9_.-/]: '_' is LIKE's one wildcard to escape.
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            q = q.where(parameters.c.name.like(escaped + "%", escape="\\"))
        if after is not None:
            q = q.where(parameters.c.name > after)
        q = q.order_by(parameters.c.name).limit(limit)
        return [_version(r) for r in self._c.execute(q)]

    def count(self, account: str, region: str) -> int:
        q = sa.select(sa.func.count()).where(
            parameters.c.account_id == account, parameters.c.region == region
        )
        return int(self._c.execute(q).scalar_one())

    def tags(self, account: str, region: str, name: str) -> list[Tag]:
        q = (
            sa.select(tags_table)
            .where(*_named(tags_table, account, region, name))
            .order_by(tags_table.c.tag_key)
        )
        return [Tag(r.tag_key, r.tag_value) for r in self._c.execute(q)]

    def put_tags(self, account: str, region: str, name: str, tags: Sequence[Tag]) -> None:
        if not tags:
            return
        self._c.execute(
            tags_table.delete().where(
                *_named(tags_table, account, region, name),
                tags_table.c.tag_key.in_([t.key for t in tags]),
            )
        )
        self._c.execute(
            tags_table.insert(),
            [
                {
                    "account_id": account,
                    "region": region,
                    "name": name,
                    "tag_key": t.key,
                    "tag_value": t.value,
                }
                for t in tags
            ],
        )

    def delete_tags(self, account: str, region: str, name: str, keys: Sequence[str]) -> None:
        self._c.execute(
            tags_table.delete().where(
                *_named(tags_table, account, region, name), tags_table.c.tag_key.in_(list(keys))
            )
        )
