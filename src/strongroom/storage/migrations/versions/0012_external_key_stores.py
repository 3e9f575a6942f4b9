"""custom key stores of type EXTERNAL_KEY_STORE: their proxy settings, and the external key
of each KMS key in one

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An external key store has no cluster and no trust anchor; its proxy's secret access
    # key goes, wrapped under the root key, in wrapped_password.
    with op.batch_alter_table("custom_key_stores", schema=None) as batch_op:
        batch_op.alter_column("cluster_id", existing_type=sa.String(24), nullable=True)
        batch_op.alter_column("trust_anchor", existing_type=sa.Text(), nullable=True)
        batch_op.add_column(sa.Column("xks_uri_endpoint", sa.String(128), nullable=True))
        batch_op.add_column(sa.Column("xks_uri_path", sa.String(128), nullable=True))
        batch_op.add_column(sa.Column("xks_connectivity", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("xks_access_key_id", sa.String(30), nullable=True))
    # The external key (XksKeyId) of a key in an external key store: one KMS key per
    # external key in a store (XksKeyAlreadyInUseException).
    with op.batch_alter_table("keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("xks_key_id", sa.String(128), nullable=True))
        batch_op.create_index(
            "uq_keys_store_xks_key_id", ["custom_key_store_id", "xks_key_id"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("keys", schema=None) as batch_op:
        batch_op.drop_index("uq_keys_store_xks_key_id")
        batch_op.drop_column("xks_key_id")
    op.execute("DELETE FROM custom_key_stores WHERE store_type = 'EXTERNAL_KEY_STORE'")
    with op.batch_alter_table("custom_key_stores", schema=None) as batch_op:
        batch_op.drop_column("xks_access_key_id")
        batch_op.drop_column("xks_connectivity")
        batch_op.drop_column("xks_uri_path")
        batch_op.drop_column("xks_uri_endpoint")
        batch_op.alter_column("trust_anchor", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("cluster_id", existing_type=sa.String(24), nullable=False)
