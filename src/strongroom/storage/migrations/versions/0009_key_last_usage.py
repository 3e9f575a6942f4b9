"""the last successful cryptographic use of each key, and when tracking began

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_last_usage",
        sa.Column("key_arn", sa.String(256), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("used", sa.Float(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("key_arn"),
    )
    # Tracking begins now: GetKeyLastUsage's TrackingStartDate is the later of this time and
    # the key's creation ("the date from which KMS began recording cryptographic activity
    # for this key, or the date the KMS key was created, whichever is later").
    tracking = op.create_table(
        "key_usage_tracking",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("started", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(tracking, [{"id": 1, "started": time.time()}])


def downgrade() -> None:
    op.drop_table("key_usage_tracking")
    op.drop_table("key_last_usage")
