"""Staff accounts an administrator can run: a password the user must change at next sign-in,
each account's last sign-in time and source address, API tokens scoped to roles with an
expiry, and the source address of every audited action.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("last_sign_in_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("last_sign_in_from", sa.String(64)))
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("roles", sa.String(80)))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("source", sa.String(64)))
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("roles")
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("last_sign_in_from")
        batch.drop_column("last_sign_in_at")
