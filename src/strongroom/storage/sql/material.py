"""Key material in SQL: wrapped material, material versions and import tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from strongroom.domain.enums import (
    ExpirationModel,
    ImportState,
    KeyMaterialState,
    RotationType,
    WrappingAlgorithm,
    WrappingKeySpec,
)
from strongroom.domain.models import MaterialVersion
from strongroom.storage.ports import ImportTokenRecord
from strongroom.storage.schema import import_tokens, key_material_versions, key_materials
from strongroom.storage.sql._rows import dt, enum, ts, value

_versions = key_material_versions


def _material_version(row: sa.Row[Any]) -> MaterialVersion:
    return MaterialVersion(
        key_arn=row.key_arn,
        version=row.version,
        material_id=row.material_id,
        state=KeyMaterialState(row.state),
        created=datetime.fromtimestamp(row.created, UTC),
        rotation_date=dt(row.rotation_date),
        rotation_type=enum(RotationType, row.rotation_type),
        import_state=enum(ImportState, row.import_state),
        expiration_model=enum(ExpirationModel, row.expiration_model),
        valid_to=dt(row.valid_to),
        description=row.description,
    )


def _material_version_values(info: MaterialVersion) -> dict[str, Any]:
    return {
        "key_arn": info.key_arn,
        "version": info.version,
        "material_id": info.material_id,
        "state": info.state.value,
        "created": info.created.timestamp(),
        "rotation_date": ts(info.rotation_date),
        "rotation_type": value(info.rotation_type),
        "import_state": value(info.import_state),
        "expiration_model": value(info.expiration_model),
        "valid_to": ts(info.valid_to),
        "description": info.description,
    }


_INSERT_MATERIAL = key_materials.insert()
_INSERT_VERSION = _versions.insert()


class SqlMaterial:
    """The MaterialRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    # Inserts take their values as parameters of one statement (compiled once).
    def insert(self, key_arn: str, version: int, wrapped: bytes, now: datetime) -> None:
        values = {"key_arn": key_arn, "version": version, "wrapped": wrapped}
        self._c.execute(_INSERT_MATERIAL, {**values, "created": now.timestamp()})

    def get(self, key_arn: str, version: int) -> bytes | None:
        q = sa.select(key_materials.c.wrapped).where(
            key_materials.c.key_arn == key_arn, key_materials.c.version == version
        )
        found = self._c.execute(q).scalar()
        return None if found is None else bytes(found)

    def delete(self, key_arn: str, version: int) -> None:
        """Delete the wrapped material of a version (cryptographic erasure of imported
        material); its ``MaterialVersion`` stays unless deleted as well."""
        self._c.execute(
            key_materials.delete().where(
                key_materials.c.key_arn == key_arn, key_materials.c.version == version
            )
        )

    def insert_version(self, info: MaterialVersion) -> None:
        self._c.execute(_INSERT_VERSION, _material_version_values(info))

    def update_version(self, info: MaterialVersion) -> None:
        self._c.execute(
            _versions.update()
            .where(_versions.c.key_arn == info.key_arn, _versions.c.version == info.version)
            .values(**_material_version_values(info))
        )

    def delete_version(self, key_arn: str, version: int) -> None:
        self._c.execute(
            _versions.delete().where(_versions.c.key_arn == key_arn, _versions.c.version == version)
        )

    def versions(self, key_arn: str) -> list[MaterialVersion]:
        """Every material version of a key, in version order."""
        q = sa.select(_versions).where(_versions.c.key_arn == key_arn).order_by(_versions.c.version)
        return [_material_version(r) for r in self._c.execute(q)]

    def due_to_expire(self, now: datetime) -> list[MaterialVersion]:
        """Imported material versions still imported whose ValidTo has come."""
        q = sa.select(_versions).where(
            _versions.c.import_state == ImportState.IMPORTED.value,
            _versions.c.valid_to <= now.timestamp(),
        )
        return [_material_version(r) for r in self._c.execute(q)]

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
        """Delete the parameters of import tokens that expired before ``before``."""
        self._c.execute(import_tokens.delete().where(import_tokens.c.valid_to < before.timestamp()))
