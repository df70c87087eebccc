"""Refunds with approval: each session's refund policy (until when, the fee kept per ticket),
refund requests of paid orders (maker, checker — never the same person —, amounts in fen,
the payment refund that carries the money) and the tickets each names, one live request per
ticket (a unique key).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "refund_policies",
        sa.Column("session_id", sa.Integer, nullable=False),
        sa.Column("refundable_until", WHEN),
        sa.Column("fee_kind", sa.String(10), nullable=False, server_default="none"),
        sa.Column("fee_value", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("updated_by", sa.String(80), nullable=False),
        sa.CheckConstraint("fee_kind IN ('none', 'percent', 'fixed')",
                           name="ck_refund_policies_fee_kind_known"),
        sa.CheckConstraint("fee_value >= 0 AND (fee_kind != 'percent' OR fee_value <= 100)",
                           name="ck_refund_policies_fee_value_range"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"],
                                name="fk_refund_policies_session_id_sessions"),
        sa.PrimaryKeyConstraint("session_id", name="pk_refund_policies"),
    )
    op.create_table(
        "refund_requests",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("state", sa.String(10), nullable=False, server_default="pending"),
        sa.Column("gross", sa.BigInteger, nullable=False),
        sa.Column("fee", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("maker", sa.String(80), nullable=False),
        sa.Column("checker", sa.String(80)),
        sa.Column("bulk", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("decision_note", sa.String(200)),
        sa.Column("payment_refund_id", sa.Integer),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("decided_at", WHEN),
        sa.Column("finished_at", WHEN),
        sa.CheckConstraint("state IN ('pending', 'approved', 'rejected', 'succeeded', "
                           "'failed')", name="ck_refund_requests_state_known"),
        sa.CheckConstraint("gross >= 0 AND fee >= 0 AND amount = gross - fee",
                           name="ck_refund_requests_amount_is_gross_less_fee"),
        sa.CheckConstraint("checker IS NULL OR checker != maker",
                           name="ck_refund_requests_checker_not_maker"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"],
                                name="fk_refund_requests_order_id_orders"),
        sa.PrimaryKeyConstraint("id", name="pk_refund_requests"),
    )
    op.create_index("ix_refund_requests_order_id", "refund_requests", ["order_id"])
    op.create_index("ix_refund_requests_state", "refund_requests", ["state"])
    op.create_table(
        "refund_request_lines",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("request_id", sa.Integer, nullable=False),
        sa.Column("order_line_id", sa.Integer, nullable=False),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("active_ticket_id", sa.BigInteger),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("fee", sa.BigInteger, nullable=False),
        sa.CheckConstraint("amount >= 0 AND fee >= 0 AND fee <= amount",
                           name="ck_refund_request_lines_fee_within_amount"),
        sa.ForeignKeyConstraint(["request_id"], ["refund_requests.id"],
                                name="fk_refund_request_lines_request_id_refund_requests"),
        sa.ForeignKeyConstraint(["order_line_id"], ["order_lines.id"],
                                name="fk_refund_request_lines_order_line_id_order_lines"),
        sa.PrimaryKeyConstraint("id", name="pk_refund_request_lines"),
        sa.UniqueConstraint("active_ticket_id",
                            name="uq_refund_request_lines_active_ticket_id"),
    )
    op.create_index("ix_refund_request_lines_request_id", "refund_request_lines",
                    ["request_id"])


def downgrade() -> None:
    op.drop_table("refund_request_lines")
    op.drop_table("refund_requests")
    op.drop_table("refund_policies")
