"""Payments through providers: each payment of an order (its provider's trade number, amount
in fen, state, the provider's reference and what its refunds have taken, which the database
keeps within the amount paid), every verified provider notification by its id (a duplicate
changes nothing), and each refund with its own number.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("out_trade_no", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
        sa.Column("state", sa.String(10), nullable=False, server_default="created"),
        sa.Column("provider_reference", sa.String(64)),
        sa.Column("refunded", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("succeeded_at", WHEN),
        sa.CheckConstraint("state IN ('created', 'pending', 'succeeded', 'failed', 'closed')",
                           name="ck_payments_state_known"),
        sa.CheckConstraint("amount > 0", name="ck_payments_amount_positive"),
        sa.CheckConstraint("refunded >= 0 AND refunded <= amount",
                           name="ck_payments_refunded_within_amount"),
        sa.PrimaryKeyConstraint("id", name="pk_payments"),
        sa.UniqueConstraint("out_trade_no", name="uq_payments_out_trade_no"),
    )
    op.create_index("ix_payments_order_id", "payments", ["order_id"])
    op.create_table(
        "payment_notifications",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("notification_id", sa.String(128), nullable=False),
        sa.Column("payment_id", sa.Integer),
        sa.Column("received_at", WHEN, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"],
                                name="fk_payment_notifications_payment_id_payments"),
        sa.PrimaryKeyConstraint("id", name="pk_payment_notifications"),
        sa.UniqueConstraint("provider", "notification_id",
                            name="uq_payment_notifications_provider"),
    )
    op.create_table(
        "payment_refunds",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("payment_id", sa.Integer, nullable=False),
        sa.Column("out_refund_no", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(12), nullable=False, server_default="requested"),
        sa.Column("reason", sa.String(80)),
        sa.Column("provider_reference", sa.String(64)),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("finished_at", WHEN),
        sa.CheckConstraint("state IN ('requested', 'processing', 'succeeded', 'failed')",
                           name="ck_payment_refunds_state_known"),
        sa.CheckConstraint("amount > 0", name="ck_payment_refunds_amount_positive"),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"],
                                name="fk_payment_refunds_payment_id_payments"),
        sa.PrimaryKeyConstraint("id", name="pk_payment_refunds"),
        sa.UniqueConstraint("out_refund_no", name="uq_payment_refunds_out_refund_no"),
    )
    op.create_index("ix_payment_refunds_payment_id", "payment_refunds", ["payment_id"])


def downgrade() -> None:
    op.drop_index("ix_payment_refunds_payment_id", table_name="payment_refunds")
    op.drop_table("payment_refunds")
    op.drop_table("payment_notifications")
    op.drop_index("ix_payments_order_id", table_name="payments")
    op.drop_table("payments")
