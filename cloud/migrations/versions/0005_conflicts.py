"""Conflicts the hub finds among reported entries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conflicts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("entry_ids", sa.JSON, nullable=False),
        sa.Column("detail", sa.String(400), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True)),
        sa.Column("reviewed_by", sa.String(80)),
        sa.Column("note", sa.Text),
        sa.CheckConstraint("kind IN ('double_admission', 'admitted_after_revocation', "
                           "'admitted_before_revocation_known')", name="ck_conflicts_kind_known"),
    )
    op.create_index("ix_conflicts_ticket_id", "conflicts", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_conflicts_ticket_id", table_name="conflicts")
    op.drop_table("conflicts")
