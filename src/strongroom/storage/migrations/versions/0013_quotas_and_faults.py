"""the operator's quota values (``strongroom admin quota``) and injected faults
(``strongroom admin fault``)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_values",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("quota_name", sa.String(128), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_table(
        "faults",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("operation", sa.String(64), primary_key=True),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("rate", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("faults")
    op.drop_table("quota_values")
