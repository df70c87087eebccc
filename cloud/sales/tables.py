"""The sales tables: tickets and their holders; orders, their lines, the quotas they hold and
the per-person purchase counts their limits are enforced with."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

# A holder's name and document number are sealed (cloud/core/seal.py: AES-GCM under the data
# key outside the database, the row and column as associated data); the document is found by
# its keyed hash. Ids come from the 'holder' counter, so a row is sealed before it is written.
holders = sa.Table(
    "holders", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sealed_name", sa.Text, nullable=False),
    sa.Column("doc_type", sa.String(40), nullable=False),
    sa.Column("sealed_doc_number", sa.Text, nullable=False),
    sa.Column("doc_hash", sa.String(64), nullable=False, index=True),
)


tickets = sa.Table(
    "tickets", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("number", sa.String(40), nullable=False, unique=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("role", sa.String(12), nullable=False),
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id")),
    sa.Column("scope", sa.JSON, nullable=False),
    sa.Column("venues", sa.JSON, nullable=False),
    sa.Column("zone_id", sa.Integer),
    sa.Column("seat_id", sa.Integer, sa.ForeignKey("seats.id")),
    sa.Column("valid_from", UtcDateTime()),
    sa.Column("valid_until", UtcDateTime()),
    sa.Column("daily_limit", sa.Integer, nullable=False, server_default="0"),
    sa.Column("serial", sa.Integer, nullable=False, server_default="0"),
    sa.Column("key_id", sa.Integer, nullable=False),
    sa.Column("code", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False, server_default="issued"),
    sa.Column("rfid_uid", sa.String(20), unique=True),
    sa.Column("holder_id", sa.Integer, sa.ForeignKey("holders.id")),
    sa.Column("issued_at", UtcDateTime(), nullable=False),
    sa.Column("price_tier_id", sa.Integer),
    sa.Column("amount", sa.BigInteger, nullable=False, server_default="0"),  # fen (cents)
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    sa.Column("order_id", sa.Integer, index=True),
    sa.CheckConstraint("state IN ('issued', 'void', 'refunded')", name="state_known"),
    sa.CheckConstraint("kind IN ('session', 'sessions', 'venues')", name="kind_known"),
    sa.Index("ix_tickets_session_state", "session_id", "state"),
    sa.Index("ix_tickets_one_live_per_seat", "session_id", "seat_id", unique=True,
             sqlite_where=sa.text("state = 'issued' AND seat_id IS NOT NULL"),
             postgresql_where=sa.text("state = 'issued' AND seat_id IS NOT NULL")),
)


ORDER_STATES = ("pending_payment", "paid", "partially_refunded", "refunded", "expired",
                "cancelled")

# An order: a buyer's (or a booth's) lines held together until paid by ``expires_at``. Its
# payment is recorded once, by (provider, reference): a second capture of it changes nothing.
orders = sa.Table(
    "orders", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(20), nullable=False, unique=True),
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id")),
    sa.Column("buyer", sa.String(80)),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("state", sa.String(20), nullable=False, server_default="pending_payment"),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("paid_at", UtcDateTime()),
    sa.Column("payment_provider", sa.String(40)),
    sa.Column("payment_reference", sa.String(200)),
    # sale; presale: the order paying a lottery application (cloud/lottery/), without lines
    # until its seats are given; topup: money onto a partner's prepaid balance, paid online
    # (buyer ``partner:<id>``, no lines, cloud/ledger/posting.py credits the balance)
    sa.Column("kind", sa.String(10), nullable=False, server_default="sale"),
    # where it was sold (cloud/channels/): none for a staff sale outside any channel
    sa.Column("channel_id", sa.Integer),
    # how the ledger names where it was sold, for split rules and reports (cloud/ledger/
    # posting.py channel_of): web, box_office, kiosk, contract, distributor or agent
    sa.Column("sold_via", sa.String(12)),
    sa.CheckConstraint("state IN ('pending_payment', 'paid', 'partially_refunded', 'refunded', "
                       "'expired', 'cancelled')", name="state_known"),
    sa.CheckConstraint("total >= 0", name="total_not_negative"),
    sa.UniqueConstraint("payment_provider", "payment_reference"),
    sa.Index("ix_orders_state_expires_at", "state", "expires_at"),
    sa.Index("ix_orders_session_id_buyer", "session_id", "buyer"),
    sa.Index("ix_orders_channel_id_created_at", "channel_id", "created_at"),
)

TOPUP = "topup"  # the kind of an order paying a partner's prepaid balance online
LINE_KINDS = ("seat", "ga", "pass")
LIVE_LINE = "state IN ('held', 'issued')"

# One line per ticket-to-be: a seat, a general-admission place (zone) or a pass (product), at
# its price, with its holder (sealed, cloud/sales/holders.py) and, once paid, its ticket.
# holder_hash is the holder's keyed document hash (per-holder limits); doc_hash is the same,
# on real-name sessions only: the partial unique index makes "one live ticket per document per
# session" a constraint, not a read.
order_lines = sa.Table(
    "order_lines", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("session_id", sa.Integer),
    sa.Column("seat_id", sa.Integer),
    sa.Column("zone_id", sa.Integer, nullable=False, server_default="0"),
    sa.Column("price_tier_id", sa.Integer),
    sa.Column("product_id", sa.Integer),
    # a day product's day (China date): the day its ticket admits on
    sa.Column("day", sa.Date),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    sa.Column("holder_id", sa.Integer, sa.ForeignKey("holders.id")),
    sa.Column("holder_hash", sa.String(64), index=True),
    sa.Column("doc_hash", sa.String(64)),
    sa.Column("state", sa.String(10), nullable=False, server_default="held"),
    sa.Column("ticket_id", sa.BigInteger),
    # what the line counts against while live: {"quotas": [ids], "counts": [[scope, party]]}
    sa.Column("holds", sa.JSON, nullable=False),
    sa.CheckConstraint("kind IN ('seat', 'ga', 'pass')", name="kind_known"),
    sa.CheckConstraint("state IN ('held', 'issued', 'released', 'refunded')",
                       name="state_known"),
    sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
    sa.Index("ix_order_lines_one_live_per_document", "session_id", "doc_hash", unique=True,
             sqlite_where=sa.text(f"doc_hash IS NOT NULL AND {LIVE_LINE}"),
             postgresql_where=sa.text(f"doc_hash IS NOT NULL AND {LIVE_LINE}")),
)


# Which quotas an order counts against (n: its lines on each), so that a sale short of room
# can find the lapsed orders still counted in a quota and tidy them first.
order_quotas = sa.Table(
    "order_quotas", metadata,
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("quota_id", sa.Integer, sa.ForeignKey("quotas.id"), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.CheckConstraint("n >= 0", name="n_not_negative"),
    sa.Index("ix_order_quotas_quota_id", "quota_id"),
)


# Per-person purchase counts: ``scope`` is a session or an event ('s:12', 'e:3'), ``party`` a
# buyer or a holder's document hash ('b:…', 'h:…'). A limit is enforced like a quota: one
# conditional UPDATE (``used + n <= limit``) in the order's transaction.
purchase_counts = sa.Table(
    "purchase_counts", metadata,
    sa.Column("scope", sa.String(24), primary_key=True),
    sa.Column("party", sa.String(90), primary_key=True),
    sa.Column("used", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("used >= 0", name="used_not_negative"),
)


# -- refunds (cloud/sales/refunds.py) --------------------------------------------------------

FEE_KINDS = ("none", "percent", "fixed")

# A session's refund policy: refunds are asked for until ``refundable_until`` (none: until the
# session starts), less a fee per ticket, a whole percent of its price or a fixed amount in fen.
# A session without a row refunds in full until it starts.
refund_policies = sa.Table(
    "refund_policies", metadata,
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id"), primary_key=True),
    sa.Column("refundable_until", UtcDateTime()),
    sa.Column("fee_kind", sa.String(10), nullable=False, server_default="none"),
    sa.Column("fee_value", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("updated_by", sa.String(80), nullable=False),
    sa.CheckConstraint("fee_kind IN ('none', 'percent', 'fixed')", name="fee_kind_known"),
    sa.CheckConstraint("fee_value >= 0 AND (fee_kind != 'percent' OR fee_value <= 100)",
                       name="fee_value_range"),
)

REFUND_REQUEST_STATES = ("pending", "approved", "rejected", "succeeded", "failed")

# A request to refund some tickets of a paid order: asked by one person (maker), approved or
# rejected by another (checker); once approved, its money goes back through the order's
# payment (payment_refund_id) and it ends succeeded or failed with that refund.
refund_requests = sa.Table(
    "refund_requests", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("state", sa.String(10), nullable=False, server_default="pending"),
    sa.Column("gross", sa.BigInteger, nullable=False),   # fen: the lines' prices
    sa.Column("fee", sa.BigInteger, nullable=False),     # fen: what the policy keeps
    sa.Column("amount", sa.BigInteger, nullable=False),  # fen: gross - fee, given back
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("maker", sa.String(80), nullable=False),
    sa.Column("checker", sa.String(80)),
    sa.Column("bulk", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("decision_note", sa.String(200)),
    sa.Column("payment_refund_id", sa.Integer),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("decided_at", UtcDateTime()),
    sa.Column("finished_at", UtcDateTime()),
    sa.CheckConstraint("state IN ('pending', 'approved', 'rejected', 'succeeded', 'failed')",
                       name="state_known"),
    sa.CheckConstraint("gross >= 0 AND fee >= 0 AND amount = gross - fee",
                       name="amount_is_gross_less_fee"),
    sa.CheckConstraint("checker IS NULL OR checker != maker", name="checker_not_maker"),
    sa.Index("ix_refund_requests_state", "state"),
)

# The tickets a request covers. ``active_ticket_id`` is the ticket while the request may still
# refund it (cleared when rejected): its unique key lets no two requests refund one ticket.
refund_request_lines = sa.Table(
    "refund_request_lines", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.Integer, sa.ForeignKey("refund_requests.id"), nullable=False,
              index=True),
    sa.Column("order_line_id", sa.Integer, sa.ForeignKey("order_lines.id"), nullable=False),
    sa.Column("ticket_id", sa.BigInteger, nullable=False),
    sa.Column("active_ticket_id", sa.BigInteger, unique=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("fee", sa.BigInteger, nullable=False),
    sa.CheckConstraint("amount >= 0 AND fee >= 0 AND fee <= amount", name="fee_within_amount"),
)


# -- risk flags (cloud/sales/flags.py) --------------------------------------------------------

FLAG_BLOCKS = ("buy", "refunds", "entry")
FLAG_TARGETS = ("holder", "buyer")

# A risk flag: a holder (by document: its type, the keyed hash of the number as in
# ``holders``, and the number sealed for staff to see masked) or a buyer (the party string
# ``buyer:<id>`` orders carry) kept from buying, from refunds or from entry, for a reason, until
# it expires or is lifted. Live = not lifted and not expired, read by time: nothing has to run
# for a flag to stop counting. An entry flag reaches the appliances as a holder block; ``venues``
# are those its block was sent to, ``unblocked_at`` when its delete was (lifted or expired).
risk_flags = sa.Table(
    "risk_flags", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("target", sa.String(10), nullable=False),
    sa.Column("blocks", sa.String(10), nullable=False),
    sa.Column("buyer", sa.String(80)),
    sa.Column("doc_type", sa.String(40)),
    sa.Column("doc_hash", sa.String(64)),
    sa.Column("sealed_doc_number", sa.Text),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime()),
    sa.Column("lifted_by", sa.String(80)),
    sa.Column("lifted_at", UtcDateTime()),
    sa.Column("lift_reason", sa.String(200)),
    sa.Column("venues", sa.JSON, nullable=False),
    sa.Column("unblocked_at", UtcDateTime()),
    sa.CheckConstraint("target IN ('holder', 'buyer')", name="target_known"),
    sa.CheckConstraint("blocks IN ('buy', 'refunds', 'entry')", name="blocks_known"),
    sa.CheckConstraint("(target = 'holder' AND doc_type IS NOT NULL AND doc_hash IS NOT NULL "
                       "AND buyer IS NULL) OR (target = 'buyer' AND buyer IS NOT NULL "
                       "AND doc_hash IS NULL AND doc_type IS NULL)", name="target_named"),
    sa.CheckConstraint("blocks != 'entry' OR target = 'holder'", name="entry_by_holder"),
    sa.CheckConstraint("expires_at IS NULL OR expires_at > created_at",
                       name="expires_after_created"),
    sa.CheckConstraint("(lifted_at IS NULL) = (lifted_by IS NULL)", name="lifted_by_someone"),
    sa.Index("ix_risk_flags_doc_hash", "doc_hash"),
    sa.Index("ix_risk_flags_buyer", "buyer"),
    sa.Index("ix_risk_flags_blocks_unblocked_at", "blocks", "unblocked_at"),
)
