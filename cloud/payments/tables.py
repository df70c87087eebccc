"""The payments tables: each payment of an order through a provider, every verified
notification a provider sent (so a duplicate changes nothing), and each refund.

Amounts are whole fen (the currency's minor unit), never floats. ``refunded`` on a payment is
what its refunds have taken or hold (requested, processing or succeeded): it is raised in the
refund's own transaction and the database refuses it above the amount paid, so no race of two
refunds can give back more than was paid (a failed refund gives its share back).
"""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

PAYMENT_STATES = ("created", "pending", "succeeded", "failed", "closed")
REFUND_STATES = ("requested", "processing", "succeeded", "failed")

payments = sa.Table(
    "payments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, nullable=False, index=True),
    sa.Column("provider", sa.String(20), nullable=False),
    sa.Column("out_trade_no", sa.String(64), nullable=False, unique=True),
    sa.Column("amount", sa.BigInteger, nullable=False),  # fen
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    sa.Column("state", sa.String(10), nullable=False, server_default="created"),
    sa.Column("provider_reference", sa.String(64)),
    sa.Column("refunded", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("succeeded_at", UtcDateTime()),
    sa.CheckConstraint("state IN ('created', 'pending', 'succeeded', 'failed', 'closed')",
                       name="state_known"),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.CheckConstraint("refunded >= 0 AND refunded <= amount", name="refunded_within_amount"),
)

payment_notifications = sa.Table(
    "payment_notifications", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("provider", sa.String(20), nullable=False),
    sa.Column("notification_id", sa.String(128), nullable=False),
    sa.Column("payment_id", sa.Integer, sa.ForeignKey("payments.id")),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.UniqueConstraint("provider", "notification_id"),
)

payment_refunds = sa.Table(
    "payment_refunds", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("payment_id", sa.Integer, sa.ForeignKey("payments.id"), nullable=False,
              index=True),
    sa.Column("out_refund_no", sa.String(64), nullable=False, unique=True),
    sa.Column("amount", sa.BigInteger, nullable=False),  # fen
    sa.Column("state", sa.String(12), nullable=False, server_default="requested"),
    sa.Column("reason", sa.String(80)),
    sa.Column("provider_reference", sa.String(64)),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime()),
    sa.CheckConstraint("state IN ('requested', 'processing', 'succeeded', 'failed')",
                       name="state_known"),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
)
