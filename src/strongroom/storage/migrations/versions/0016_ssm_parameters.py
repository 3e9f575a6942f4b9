"""Parameter Store: parameters, their versions and their tags; the admin policy gains ssm:*

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _owner() -> list[sa.Column[str]]:
    """The key columns every Parameter Store table begins with (fresh for each table)."""
    return [
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(1011), primary_key=True),
    ]


def upgrade() -> None:
    op.create_table(
        "ssm_parameters", *_owner(), sa.Column("current_version", sa.Integer, nullable=False)
    )
    op.create_table(
        "ssm_parameter_versions",
        *_owner(),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=True),
        sa.Column("key_id", sa.String(256), nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("allowed_pattern", sa.Text, nullable=False),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("data_type", sa.String(128), nullable=False),
        sa.Column("modified", sa.Float, nullable=False),
        sa.Column("modified_user", sa.String(2048), nullable=False),
    )
    op.create_table(
        "ssm_parameter_tags",
        *_owner(),
        sa.Column("tag_key", sa.String(128), primary_key=True),
        sa.Column("tag_value", sa.String(256), nullable=False),
    )
    _admin_policies(_OLD_ADMIN_POLICY, _NEW_ADMIN_POLICY)


# The admin user's policy as server.wiring wrote it before Parameter Store, and after: the
# admin keeps what an AWS administrator has, the SSM API included.
_OLD_ADMIN_POLICY = (
    '{"Version": "2012-10-17", "Statement": '
    '[{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}'
)
_NEW_ADMIN_POLICY = (
    '{"Version": "2012-10-17", "Statement": '
    '[{"Effect": "Allow", "Action": ["kms:*", "ssm:*"], "Resource": "*"}]}'
)


def _admin_policies(old: str, new: str) -> None:
    policies = sa.table(
        "identity_policies",
        sa.column("policy_name", sa.String),
        sa.column("document", sa.Text),
    )
    op.get_bind().execute(
        policies.update()
        .where(policies.c.policy_name == "strongroom-admin", policies.c.document == old)
        .values(document=new)
    )


def downgrade() -> None:
    _admin_policies(_NEW_ADMIN_POLICY, _OLD_ADMIN_POLICY)
    op.drop_table("ssm_parameter_tags")
    op.drop_table("ssm_parameter_versions")
    op.drop_table("ssm_parameters")
