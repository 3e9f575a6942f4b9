"""multi-Region keys

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("primary_region", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_keys_account_key_id", ["account_id", "key_id"], unique=False)
        batch_op.create_index("ix_keys_state", ["state"], unique=False)
    # A multi-Region key made before this revision is the primary of its own set.
    keys = sa.table(
        "keys",
        sa.column("multi_region", sa.Boolean),
        sa.column("region", sa.String),
        sa.column("primary_region", sa.String),
    )
    op.execute(
        keys.update().where(keys.c.multi_region == sa.true()).values(primary_region=keys.c.region)
    )


def downgrade() -> None:
    with op.batch_alter_table("keys", schema=None) as batch_op:
        batch_op.drop_index("ix_keys_state")
        batch_op.drop_index("ix_keys_account_key_id")
        batch_op.drop_column("primary_region")
