"""grants

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grants",
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("key_arn", sa.String(length=256), nullable=False),
        sa.Column("grantee_principal", sa.String(length=256), nullable=False),
        sa.Column("retiring_principal", sa.String(length=256), nullable=True),
        sa.Column("operations", sa.Text(), nullable=False),
        sa.Column("constraint_type", sa.String(length=32), nullable=True),
        sa.Column("constraint_context", sa.Text(), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("issuing_account", sa.String(length=256), nullable=False),
        sa.Column("creation_date", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["key_arn"], ["keys.arn"]),
        sa.PrimaryKeyConstraint("grant_id"),
    )
    op.create_index("ix_grants_key", "grants", ["key_arn", "creation_date", "grant_id"])
    op.create_index(
        "ix_grants_retiring", "grants", ["retiring_principal", "creation_date", "grant_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_grants_retiring", table_name="grants")
    op.drop_index("ix_grants_key", table_name="grants")
    op.drop_table("grants")
