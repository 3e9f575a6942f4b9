"""custom key stores of type AWS_CLOUDHSM and the PKCS#11 tokens registered as clusters

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hsm_clusters",
        sa.Column("cluster_id", sa.String(24), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("module_path", sa.Text(), nullable=False),
        sa.Column("token_label", sa.String(64), nullable=False),
        sa.Column("trust_anchor", sa.Text(), nullable=False),
        sa.Column("hsm_count", sa.Integer(), nullable=False),
        sa.Column("softhsm", sa.Boolean(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("cluster_id"),
    )
    op.create_index("ix_hsm_clusters_account", "hsm_clusters", ["account_id", "cluster_id"])
    op.create_table(
        "custom_key_stores",
        sa.Column("store_id", sa.String(24), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("store_type", sa.String(32), nullable=False),
        sa.Column("cluster_id", sa.String(24), nullable=False),
        sa.Column("trust_anchor", sa.Text(), nullable=False),
        sa.Column("wrapped_password", sa.LargeBinary(), nullable=False),
        sa.Column("connection_state", sa.String(16), nullable=False),
        sa.Column("connection_error_code", sa.String(48), nullable=True),
        sa.Column("creation_date", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["cluster_id"], ["hsm_clusters.cluster_id"]),
        sa.PrimaryKeyConstraint("store_id"),
        sa.UniqueConstraint("account_id", "region", "name", name="uq_custom_key_stores_name"),
    )
    op.create_index(
        "ix_custom_key_stores_account_region",
        "custom_key_stores",
        ["account_id", "region", "creation_date"],
    )
    op.create_index("ix_custom_key_stores_cluster", "custom_key_stores", ["cluster_id"])
    # The custom key store a key's material lives in (None: the root-key-wrapped store).
    with op.batch_alter_table("keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("custom_key_store_id", sa.String(24), nullable=True))
        batch_op.create_index("ix_keys_custom_key_store_id", ["custom_key_store_id"])


def downgrade() -> None:
    with op.batch_alter_table("keys", schema=None) as batch_op:
        batch_op.drop_index("ix_keys_custom_key_store_id")
        batch_op.drop_column("custom_key_store_id")
    op.drop_index("ix_custom_key_stores_cluster", table_name="custom_key_stores")
    op.drop_index("ix_custom_key_stores_account_region", table_name="custom_key_stores")
    op.drop_table("custom_key_stores")
    op.drop_index("ix_hsm_clusters_account", table_name="hsm_clusters")
    op.drop_table("hsm_clusters")
