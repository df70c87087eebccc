"""Price tiers per session and seat category; the price each ticket was sold at.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "price_tiers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.Integer,
                  sa.ForeignKey("sessions.id", name="fk_price_tiers_session_id_sessions"),
                  nullable=False),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
        sa.UniqueConstraint("session_id", "code", name="uq_price_tiers_session_id"),
        sa.CheckConstraint("amount >= 0", name="ck_price_tiers_amount_not_negative"),
    )
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("price_tier_id", sa.Integer))
        batch.add_column(sa.Column("amount", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("currency", sa.String(3), nullable=False,
                                   server_default="CNY"))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("currency")
        batch.drop_column("amount")
        batch.drop_column("price_tier_id")
    op.drop_table("price_tiers")
