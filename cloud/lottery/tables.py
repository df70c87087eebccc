"""The presale lottery's tables: a presale per event with its lots (session × price tier and
the tickets in the draw for each), buyers' applications (paid through an order of kind
``presale``), the holders each application names, and per-person counters.

"One document per session" across applications is the partial unique index on the live
holders' (session, document hash), and a buyer's limit is a counter row raised by a
conditional upsert: both hold under races without a read-then-write.
"""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

PRESALE_STATES = ("draft", "open", "frozen", "drawn", "assigned")
APPLICATION_STATES = ("applied", "void", "refused", "won", "lost", "refunding", "refunded",
                      "seated")
LIVE_APPLICATION = "live"

# state: draft (being set up) → open (taking applications between opens_at and closes_at)
# → frozen (list exported, its hash published) → drawn (result accepted; winners choose seats
# until choose_closes_at) → assigned (every winner seated).
presales = sa.Table(
    "presales", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False, server_default="draft"),
    sa.Column("opens_at", UtcDateTime(), nullable=False),
    sa.Column("closes_at", UtcDateTime(), nullable=False),
    sa.Column("choose_closes_at", UtcDateTime()),
    sa.Column("real_name", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("max_quantity", sa.Integer, nullable=False, server_default="4"),
    sa.Column("buyer_limit", sa.Integer),  # tickets one buyer may apply for in the presale
    sa.Column("channels", sa.JSON, nullable=False),
    sa.Column("payment_minutes", sa.Integer, nullable=False, server_default="15"),
    sa.Column("frozen_at", UtcDateTime()),
    sa.Column("list_sha256", sa.String(64)),
    sa.Column("list_file", sa.LargeBinary),
    sa.Column("seed_first_by", sa.String(80)),
    sa.Column("seed_first_hash", sa.String(64)),
    sa.Column("seed", sa.String(200)),
    sa.Column("seed_by", sa.String(200)),
    sa.Column("seed_fixed_at", UtcDateTime()),
    sa.Column("result_source", sa.String(10)),
    sa.Column("result_sha256", sa.String(64)),
    sa.Column("result_file", sa.LargeBinary),
    sa.Column("drawn_at", UtcDateTime()),
    sa.Column("drawn_by", sa.String(80)),
    sa.Column("assigned_at", UtcDateTime()),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("state IN ('draft', 'open', 'frozen', 'drawn', 'assigned')",
                       name="state_known"),
    sa.CheckConstraint("opens_at < closes_at", name="window_ordered"),
    sa.CheckConstraint("max_quantity BETWEEN 1 AND 10", name="max_quantity_range"),
    sa.CheckConstraint("buyer_limit IS NULL OR buyer_limit >= 1", name="buyer_limit_positive"),
    sa.CheckConstraint("payment_minutes BETWEEN 1 AND 1440", name="payment_minutes_range"),
    sa.CheckConstraint("result_source IS NULL OR result_source IN ('draw', 'import')",
                       name="result_source_known"),
)

# A lot: a session and price tier offered in the presale, with the tickets in its draw.
presale_lots = sa.Table(
    "presale_lots", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("presale_id", sa.Integer, sa.ForeignKey("presales.id"), nullable=False),
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("price_tier_id", sa.Integer, sa.ForeignKey("price_tiers.id"), nullable=False),
    sa.Column("tickets", sa.Integer, nullable=False),
    sa.CheckConstraint("tickets > 0", name="tickets_positive"),
    sa.UniqueConstraint("presale_id", "session_id", "price_tier_id"),
)

# An application: a buyer's ask for ``quantity`` tickets of a lot, paid through its order
# (kind ``presale``, no lines until seats are given). applied → void (never paid) | refused
# (paid, failed the check at the freeze) | won | lost; lost and refused → refunding →
# refunded; won → seated (seats chosen or assigned, tickets issued on the same order).
presale_applications = sa.Table(
    "presale_applications", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("presale_id", sa.Integer, sa.ForeignKey("presales.id"), nullable=False),
    sa.Column("lot_id", sa.Integer, sa.ForeignKey("presale_lots.id"), nullable=False),
    sa.Column("number", sa.String(20), nullable=False, unique=True),
    sa.Column("buyer", sa.String(80), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),  # fen, the whole application
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False, unique=True),
    sa.Column("state", sa.String(10), nullable=False, server_default="applied"),
    sa.Column("reason", sa.String(80)),
    sa.Column("rank", sa.Integer),  # its place in its lot's draw order, winners first
    sa.Column("refund_id", sa.Integer),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("quantity BETWEEN 1 AND 10", name="quantity_range"),
    sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
    sa.CheckConstraint("state IN ('applied', 'void', 'refused', 'won', 'lost', 'refunding', "
                       "'refunded', 'seated')", name="state_known"),
    sa.Index("ix_presale_applications_presale_state", "presale_id", "state"),
    sa.Index("ix_presale_applications_buyer", "buyer"),
    # the worker's look for applications of lots of cancelled sessions (cancelling.py)
    sa.Index("ix_presale_applications_lot_state", "lot_id", "state"),
)

# Who an application's tickets name: the buyer's own identity ("me") or a companion
# ("c<id>"), kept to check the verification again at the freeze; the holder row (sealed,
# cloud/sales/holders.py) the tickets will name. ``live`` until the application is void.
presale_holders = sa.Table(
    "presale_holders", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("application_id", sa.Integer, sa.ForeignKey("presale_applications.id"),
              nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("person", sa.String(20), nullable=False),
    sa.Column("holder_id", sa.Integer, sa.ForeignKey("holders.id"), nullable=False),
    sa.Column("session_id", sa.Integer, nullable=False),
    sa.Column("doc_hash", sa.String(64), nullable=False),
    sa.Column("live", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Index("ix_presale_holders_one_live_per_document", "session_id", "doc_hash",
             unique=True, sqlite_where=sa.text("live"), postgresql_where=sa.text("live")),
)

# Tickets applied for per buyer in a presale, raised with a conditional upsert.
presale_counts = sa.Table(
    "presale_counts", metadata,
    sa.Column("presale_id", sa.Integer, sa.ForeignKey("presales.id"), primary_key=True),
    sa.Column("party", sa.String(90), primary_key=True),
    sa.Column("used", sa.Integer, nullable=False),
    sa.CheckConstraint("used >= 0", name="used_not_negative"),
)
