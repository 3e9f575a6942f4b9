"""keys by account, Region and state, kept as keys come, go and change state

Revision ID: 0018
Revises: 0017

Every /metrics scrape reported the keys by state with ``SELECT state, COUNT(*) FROM keys
GROUP BY state``, a read of every key: ``key_state_counts`` holds the numbers, counted once
here from the keys there are; the store adds and subtracts in the transaction that inserts,
deletes or changes the state of a key (``sql/keys.py``). By account and Region, as
``key_counts`` (0017): a CreateKey locks a row of its own account's Region, no row that
every account shares.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_state_counts",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(32), primary_key=True),
        sa.Column("key_count", sa.Integer, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # No key comes, goes or changes state between the count and the commit (SQLite:
        # the write lock).
        op.execute("LOCK TABLE keys IN SHARE MODE")
    op.execute(
        "INSERT INTO key_state_counts (account_id, region, state, key_count) "
        "SELECT account_id, region, state, COUNT(*) FROM keys GROUP BY account_id, region, state"
    )


def downgrade() -> None:
    op.drop_table("key_state_counts")
