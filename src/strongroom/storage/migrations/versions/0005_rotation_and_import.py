"""key rotation and imported key material

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from strongroom.crypto.key_import import generated_material_id

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("keys") as batch:
        batch.add_column(sa.Column("rotation_period_days", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("next_rotation_date", sa.Float(), nullable=True))
        batch.add_column(sa.Column("current_material_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("expiration_model", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("valid_to", sa.Float(), nullable=True))
        batch.create_index("ix_keys_next_rotation_date", ["next_rotation_date"], unique=False)
    op.create_table(
        "key_material_versions",
        sa.Column("key_arn", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("material_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=48), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("rotation_date", sa.Float(), nullable=True),
        sa.Column("rotation_type", sa.String(length=16), nullable=True),
        sa.Column("import_state", sa.String(length=16), nullable=True),
        sa.Column("expiration_model", sa.String(length=32), nullable=True),
        sa.Column("valid_to", sa.Float(), nullable=True),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(["key_arn"], ["keys.arn"]),
        sa.PrimaryKeyConstraint("key_arn", "version"),
    )
    op.create_index(
        "ix_key_material_versions_valid_to", "key_material_versions", ["valid_to"], unique=False
    )
    op.create_table(
        "import_tokens",
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("key_arn", sa.String(length=256), nullable=False),
        sa.Column("wrapping_algorithm", sa.String(length=32), nullable=False),
        sa.Column("wrapping_key_spec", sa.String(length=16), nullable=False),
        sa.Column("wrapped_private_key", sa.LargeBinary(), nullable=False),
        sa.Column("valid_to", sa.Float(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("token_digest"),
    )
    op.create_index("ix_import_tokens_key_arn", "import_tokens", ["key_arn"], unique=False)
    op.create_index("ix_import_tokens_valid_to", "import_tokens", ["valid_to"], unique=False)
    _describe_existing_materials()


def _describe_existing_materials() -> None:
    """Every key made before this revision has generated material versions: record each
    with its KeyMaterialId (the digest of key ARN and version that DescribeKey showed
    already), CURRENT for the key's current version."""
    keys = sa.table(
        "keys",
        sa.column("arn", sa.String),
        sa.column("current_version", sa.Integer),
        sa.column("current_material_id", sa.String),
    )
    materials = sa.table(
        "key_materials",
        sa.column("key_arn", sa.String),
        sa.column("version", sa.Integer),
        sa.column("created", sa.Float),
    )
    versions = sa.table(
        "key_material_versions",
        sa.column("key_arn", sa.String),
        sa.column("version", sa.Integer),
        sa.column("material_id", sa.String),
        sa.column("state", sa.String),
        sa.column("created", sa.Float),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            materials.c.key_arn, materials.c.version, materials.c.created, keys.c.current_version
        ).join(keys, keys.c.arn == materials.c.key_arn)
    ).all()
    for row in rows:
        conn.execute(
            versions.insert().values(
                key_arn=row.key_arn,
                version=row.version,
                material_id=generated_material_id(row.key_arn, row.version),
                state="CURRENT" if row.version == row.current_version else "NON_CURRENT",
                created=row.created,
            )
        )
    for arn, current in conn.execute(sa.select(keys.c.arn, keys.c.current_version)).all():
        conn.execute(
            keys.update()
            .where(keys.c.arn == arn)
            .values(current_material_id=generated_material_id(arn, current))
        )


def downgrade() -> None:
    op.drop_index("ix_import_tokens_valid_to", table_name="import_tokens")
    op.drop_index("ix_import_tokens_key_arn", table_name="import_tokens")
    op.drop_table("import_tokens")
    op.drop_index("ix_key_material_versions_valid_to", table_name="key_material_versions")
    op.drop_table("key_material_versions")
    with op.batch_alter_table("keys") as batch:
        batch.drop_index("ix_keys_next_rotation_date")
        batch.drop_column("valid_to")
        batch.drop_column("expiration_model")
        batch.drop_column("current_material_id")
        batch.drop_column("next_rotation_date")
        batch.drop_column("rotation_period_days")
