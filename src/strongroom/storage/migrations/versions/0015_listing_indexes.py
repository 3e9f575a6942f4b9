"""indexes in the order of each paged listing, and on the change feed's time

Revision ID: 0015
Revises: 0014

ListKeys pages keys in (creation date, ARN) order and continues after a (creation date,
ARN) position; an index that ends in ``creation_date`` alone made every page sort all the
keys of a creation date (a seed file's keys share one) and, with the old condition, read
from the start of the listing. The indexes below hold each listing's equality columns then
its order, so a page is one seek and a read of the page's rows. The change feed is pruned
by ``changed_at`` every minute: without an index, a full scan. CreateKey counts the
account's customer managed keys (the "AWS KMS keys" quota): ``ix_keys_manager`` answers the
count from the index alone; it leads with ``key_manager`` so that no listing of an
account's keys can mistake it for theirs (PostgreSQL did, before statistics were gathered
on a table just filled, and sorted every key for each page).
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# (table, old index, old columns, new index, new columns)
_REPLACED = (
    (
        "keys",
        "ix_keys_account_region",
        ["account_id", "region", "creation_date"],
        "ix_keys_listing",
        ["account_id", "region", "creation_date", "arn"],
    ),
    (
        "aliases",
        "ix_aliases_target",
        ["account_id", "region", "target_key_id"],
        "ix_aliases_target_name",
        ["account_id", "region", "target_key_id", "name"],
    ),
    (
        "custom_key_stores",
        "ix_custom_key_stores_account_region",
        ["account_id", "region", "creation_date"],
        "ix_custom_key_stores_listing",
        ["account_id", "region", "creation_date", "store_id"],
    ),
)


def upgrade() -> None:
    for table, old, _, new, columns in _REPLACED:
        op.create_index(new, table, columns)
        op.drop_index(old, table_name=table)
    op.create_index("ix_changes_changed_at", "changes", ["changed_at"])
    op.create_index("ix_keys_manager", "keys", ["key_manager", "account_id", "region"])


def downgrade() -> None:
    op.drop_index("ix_keys_manager", table_name="keys")
    op.drop_index("ix_changes_changed_at", table_name="changes")
    for table, old, columns, new, _ in _REPLACED:
        op.create_index(old, table, columns)
        op.drop_index(new, table_name=table)
