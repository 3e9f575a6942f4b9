"""the root key registry: the root keys of a migration or rotation and their states

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "root_keys",
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("check_value", sa.LargeBinary(), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("module", sa.String(1024), nullable=True),
        sa.Column("token_label", sa.String(64), nullable=True),
        sa.Column("key_label", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key_id"),
    )


def downgrade() -> None:
    op.drop_table("root_keys")
