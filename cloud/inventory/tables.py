"""The inventory's tables: each session's own seat configuration, and the capacities
(quotas) that sales consume."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

# A session's own seat configuration, copied from the venue map when the session is created.
# An order holds a row with a conditional UPDATE (available -> held, naming the order and its
# deadline; a hold past its deadline counts as available at once); its payment makes it sold.
# zone_id, row_key and position (the seat's place in its row) and rank (lower is better) let
# best-available find adjacent seats of one row without reading the venue map.
session_seats = sa.Table(
    "session_seats", metadata,
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id"), primary_key=True),
    sa.Column("seat_id", sa.Integer, sa.ForeignKey("seats.id"), primary_key=True),
    sa.Column("category", sa.String(12), nullable=False),
    sa.Column("status", sa.String(10), nullable=False, server_default="available"),
    sa.Column("reserved_for", sa.String(200)),
    sa.Column("reserved_until", UtcDateTime()),
    sa.Column("order_id", sa.Integer),
    sa.Column("held_until", UtcDateTime()),
    sa.Column("zone_id", sa.Integer, nullable=False, server_default="0"),
    sa.Column("row_key", sa.String(41), nullable=False, server_default=""),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rank", sa.Integer, nullable=False, server_default="0"),
    # the seat's category on the venue map (seats.category), which its price follows: kept
    # here, with the statistics a column has, for best-available at a tier of one category
    sa.Column("price_category", sa.String(40), nullable=False, server_default=""),
    sa.CheckConstraint("category IN ('sellable', 'registered', 'occupied', 'emergency')",
                       name="category_known"),
    sa.CheckConstraint("status IN ('available', 'held', 'sold')", name="status_known"),
    sa.CheckConstraint("status <> 'held' OR (order_id IS NOT NULL AND held_until IS NOT NULL)",
                       name="hold_names_order"),
    sa.Index("ix_session_seats_zone_row", "session_id", "zone_id", "row_key", "position"),
    sa.Index("ix_session_seats_order_id", "order_id"),
    # best-available single seats: the free ones best first, the lapsed holds by deadline
    sa.Index("ix_session_seats_best", "session_id", "zone_id", "status", "rank", "row_key",
             "position"),
    sa.Index("ix_session_seats_lapsing", "session_id", "zone_id", "status", "held_until"),
)

QUOTA_KINDS = ("zone", "tier", "ga", "pass", "day", "channel", "contract")

# Capacities the database enforces: each sale adds to ``used`` with one conditional UPDATE
# (``used + n <= capacity``) in its own transaction, quotas in id order and last. ``key`` names
# what the quota counts (kind, session, zone, tier or product), so there is one per thing.
quotas = sa.Table(
    "quotas", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(80), nullable=False, unique=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id")),
    sa.Column("zone_id", sa.Integer),
    sa.Column("price_tier_id", sa.Integer),
    sa.Column("product_id", sa.Integer),
    # a day product's stock for one day; a channel's quota (cloud/channels/)
    sa.Column("day", sa.Date),
    sa.Column("channel_id", sa.Integer),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("used", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("kind IN ('zone', 'tier', 'ga', 'pass', 'day', 'channel', 'contract')",
                       name="kind_known"),
    sa.CheckConstraint("used <= capacity", name="used_within_capacity"),
    sa.CheckConstraint("used >= 0", name="used_not_negative"),
)
