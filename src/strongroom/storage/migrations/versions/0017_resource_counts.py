"""counts of customer managed keys (per account and Region) and of grants (per key, and per
grantee on a key), kept as keys and grants come and go

Revision ID: 0017
Revises: 0016

CreateKey checked the "AWS KMS keys" quota by counting the account's customer managed keys
in the Region, a read of every one of them (in ``ix_keys_manager``): 11 ms on SQLite and
PostgreSQL at 100,000 keys, and on PostgreSQL two CreateKeys at once could both pass a
count that left room for one. ``key_counts`` holds the number, counted once here from the
keys there are; the store adds and subtracts in the transaction that inserts or deletes a
key. ``ix_keys_manager`` served only the count and goes. CreateGrant counted the key's
grants and the grantee's grants on the key (an index range of up to 50,000 entries, then
the rows for the grantee): 19 and 59 ms on SQLite at 50,000 grants; ``grant_counts`` holds
both numbers (grantee_principal "" for the key's).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_counts",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("customer_keys", sa.Integer, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # No key comes or goes between the count and the commit (SQLite: the write lock).
        op.execute("LOCK TABLE keys IN SHARE MODE")
    op.execute(
        "INSERT INTO key_counts (account_id, region, customer_keys) "
        "SELECT account_id, region, COUNT(*) FROM keys WHERE key_manager = 'CUSTOMER' "
        "GROUP BY account_id, region"
    )
    op.create_table(
        "grant_counts",
        sa.Column("key_arn", sa.String(256), primary_key=True),
        sa.Column("grantee_principal", sa.String(256), primary_key=True),
        sa.Column("grants", sa.Integer, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("LOCK TABLE grants IN SHARE MODE")
    op.execute(
        "INSERT INTO grant_counts (key_arn, grantee_principal, grants) "
        "SELECT key_arn, '', COUNT(*) FROM grants GROUP BY key_arn"
    )
    op.execute(
        "INSERT INTO grant_counts (key_arn, grantee_principal, grants) "
        "SELECT key_arn, grantee_principal, COUNT(*) FROM grants "
        "GROUP BY key_arn, grantee_principal"
    )
    op.drop_index("ix_keys_manager", table_name="keys")


def downgrade() -> None:
    op.create_index("ix_keys_manager", "keys", ["key_manager", "account_id", "region"])
    op.drop_table("grant_counts")
    op.drop_table("key_counts")
