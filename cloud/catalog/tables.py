"""The catalog's tables: venues with their zones, gates, lanes and seat map; events, their
sessions and the sessions' price tiers; the products sold beside sessions (passes)."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

venues = sa.Table(
    "venues", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("address", sa.String(400), nullable=False, server_default=""),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="Asia/Shanghai"),
)


zones = sa.Table(
    "zones", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.UniqueConstraint("venue_id", "code"),
)


gates = sa.Table(
    "gates", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("reentry", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("realname_mode", sa.String(20), nullable=False, server_default="ticket"),
    sa.Column("open_before_min", sa.Integer, nullable=False, server_default="30"),
    sa.Column("close_after_min", sa.Integer, nullable=False, server_default="60"),
    # admit on a ticket number typed by signed-in staff (never on one a reader read)
    sa.Column("manual_entry", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("venue_id", "code"),
)


gate_zones = sa.Table(
    "gate_zones", metadata,
    sa.Column("gate_id", sa.Integer, sa.ForeignKey("gates.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("zone_id", sa.Integer, sa.ForeignKey("zones.id", ondelete="CASCADE"),
              primary_key=True),
)


# The venue's seat map. A session's seat configuration starts from it (later migrations).
seats = sa.Table(
    "seats", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("zone_id", sa.Integer, sa.ForeignKey("zones.id"), nullable=False),
    sa.Column("level", sa.String(20), nullable=False),
    sa.Column("row", sa.String(20), nullable=False),
    sa.Column("number", sa.String(20), nullable=False),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("damaged", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("removed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("obstructed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("venue_id", "level", "row", "number"),
)


events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    # what is played or shown (athletics, a concert…), as the public site's search offers it
    sa.Column("discipline", sa.String(40)),
    # how many tickets one buyer / one holder (document) may have across the event's sessions
    sa.Column("buyer_limit", sa.Integer),
    sa.Column("holder_limit", sa.Integer),
    sa.CheckConstraint("buyer_limit > 0 AND holder_limit > 0", name="limits_positive"),
)

SESSION_STATES = ("scheduled", "postponed", "cancelled")

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("starts_at", UtcDateTime(), nullable=False),
    sa.Column("ends_at", UtcDateTime(), nullable=False),
    sa.Column("gates_open_at", UtcDateTime()),
    sa.Column("on_sale", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("config_confirmed_at", UtcDateTime()),
    # scheduled, postponed (new times) or cancelled (nothing more is sold)
    sa.Column("state", sa.String(10), nullable=False, server_default="scheduled"),
    # the sale window: nothing is sold before opens or from closes on (either may be open-ended)
    sa.Column("sale_opens_at", UtcDateTime()),
    sa.Column("sale_closes_at", UtcDateTime()),
    # real-name: every ticket names its holder, one live ticket per document (order_lines)
    sa.Column("real_name", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("buyer_limit", sa.Integer),
    sa.Column("holder_limit", sa.Integer),
    # how long an order's seats and quota are held for its payment
    sa.Column("payment_minutes", sa.Integer, nullable=False, server_default="15"),
    sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    sa.CheckConstraint("state IN ('scheduled', 'postponed', 'cancelled')", name="state_known"),
    sa.CheckConstraint("buyer_limit > 0 AND holder_limit > 0", name="limits_positive"),
    sa.CheckConstraint("payment_minutes > 0", name="payment_minutes_positive"),
)


# Prices are integer amounts in the currency's minor unit (fen for CNY), never floats.
price_tiers = sa.Table(
    "price_tiers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("code", sa.String(20), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    # the venue seats' category this tier prices (seats.category): a seat's price follows from
    # the seat. A tier naming no category prices general admission, and the seats whose
    # category no tier of the session names.
    sa.Column("seat_category", sa.String(40)),
    sa.Column("sale_opens_at", UtcDateTime()),
    sa.Column("sale_closes_at", UtcDateTime()),
    sa.UniqueConstraint("session_id", "code"),
    sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
    sa.Index("ix_price_tiers_one_per_category", "session_id", "seat_category", unique=True),
)


# What is sold beside a session's seats: passes, each admitting to several sessions (or to
# venues for a validity window), with a price and a capacity (the 'pass' quota naming it);
# day products (a scenic spot's day ticket, a room night: scope venues, a daily stock, the
# 'day' quota of each day) and bundles of products (product_parts).
products = sa.Table(
    "products", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id")),
    sa.Column("code", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False, server_default="pass"),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    # 'sessions' (scope: session ids) or 'venues' (scope: venue ids, within the validity window)
    sa.Column("scope_kind", sa.String(10), nullable=False),
    sa.Column("scope", sa.JSON, nullable=False),
    sa.Column("zone_id", sa.Integer, nullable=False, server_default="0"),
    sa.Column("daily_limit", sa.Integer, nullable=False, server_default="0"),
    sa.Column("valid_from", UtcDateTime()),
    sa.Column("valid_until", UtcDateTime()),
    sa.Column("sale_opens_at", UtcDateTime()),
    sa.Column("sale_closes_at", UtcDateTime()),
    sa.CheckConstraint("kind IN ('pass', 'day', 'bundle')", name="kind_known"),
    sa.CheckConstraint("scope_kind IN ('sessions', 'venues')", name="scope_kind_known"),
    sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
)


# A bundle's parts: each sold with the bundle, ``qty`` of it, its tickets issued as the part's.
product_parts = sa.Table(
    "product_parts", metadata,
    sa.Column("bundle_id", sa.Integer, sa.ForeignKey("products.id"), primary_key=True),
    sa.Column("part_id", sa.Integer, sa.ForeignKey("products.id"), primary_key=True),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.CheckConstraint("qty BETWEEN 1 AND 20", name="qty_range"),
)


# Central ops (cloud/ops/). Lanes as the hub knows them, so that the lane
# code an entry carries leads to its gate and the gate's zones.
lanes = sa.Table(
    "lanes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("gate_id", sa.Integer, sa.ForeignKey("gates.id"), nullable=False),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("direction", sa.String(3), nullable=False, server_default="in"),
    sa.UniqueConstraint("venue_id", "code"),
    sa.CheckConstraint("direction IN ('in', 'out')", name="direction_known"),
)
