"""a role's maximum session duration

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL (every role made before this revision): IAM's default, one hour.
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_session_duration", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.drop_column("max_session_duration")
