"""principal tags, role trust policies, role sessions

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "principal_tags",
        sa.Column("principal_arn", sa.String(length=2048), nullable=False),
        sa.Column("tag_key", sa.String(length=128), nullable=False),
        sa.Column("tag_value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(["principal_arn"], ["principals.arn"]),
        sa.PrimaryKeyConstraint("principal_arn", "tag_key"),
    )
    op.create_table(
        "role_trust_policies",
        sa.Column("role_arn", sa.String(length=2048), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["role_arn"], ["principals.arn"]),
        sa.PrimaryKeyConstraint("role_arn"),
    )
    op.create_table(
        "role_sessions",
        sa.Column("access_key_id", sa.String(length=128), nullable=False),
        sa.Column("role_arn", sa.String(length=2048), nullable=False),
        sa.Column("session_name", sa.String(length=64), nullable=False),
        sa.Column("wrapped_secret", sa.LargeBinary(), nullable=False),
        sa.Column("token_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("expiration", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["role_arn"], ["principals.arn"]),
        sa.PrimaryKeyConstraint("access_key_id"),
    )
    op.create_index("ix_role_sessions_expiration", "role_sessions", ["expiration"])


def downgrade() -> None:
    op.drop_index("ix_role_sessions_expiration", table_name="role_sessions")
    op.drop_table("role_sessions")
    op.drop_table("role_trust_policies")
    op.drop_table("principal_tags")
