"""Selling through orders: session state and sale windows, price tiers for seat categories
with their own windows, passes as products, quotas the database enforces, seats that an order
holds until its payment deadline (with their row, position and rank for best-available), and
orders with their lines, held quotas and per-person purchase counts.

Existing sessions stay scheduled with open-ended sale windows; their seats get zone, row,
position and rank from the venue map; sold seats stay sold, and every ticket sold before keeps
no order (it was sold before orders existed).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    _catalog()
    _inventory()
    _sales()
    _backfill_places(op.get_bind())


SESSION_COLUMNS = (
    ("state", sa.String(10), {"nullable": False, "server_default": "scheduled"}),
    ("sale_opens_at", WHEN, {}),
    ("sale_closes_at", WHEN, {}),
    ("real_name", sa.Boolean, {"nullable": False, "server_default": sa.false()}),
    ("buyer_limit", sa.Integer, {}),
    ("holder_limit", sa.Integer, {}),
    ("payment_minutes", sa.Integer, {"nullable": False, "server_default": "15"}),
)
SESSION_CHECKS = (("state_known", "state IN ('scheduled', 'postponed', 'cancelled')"),
                  ("limits_positive", "buyer_limit > 0 AND holder_limit > 0"),
                  ("payment_minutes_positive", "payment_minutes > 0"))


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _catalog() -> None:
    # events and sessions are referred to by other tables: SQLite cannot rebuild them inside
    # the migration's transaction without breaking those references, so there the columns are
    # added in place and their checks are left to the rules (PostgreSQL gets both)
    for name, kind, options in (("buyer_limit", sa.Integer, {}),
                                ("holder_limit", sa.Integer, {})):
        op.add_column("events", sa.Column(name, kind, **options))
    for name, kind, options in SESSION_COLUMNS:
        op.add_column("sessions", sa.Column(name, kind, **options))
    if not _sqlite():
        op.create_check_constraint("limits_positive", "events",
                                   "buyer_limit > 0 AND holder_limit > 0")
        for name, condition in SESSION_CHECKS:
            op.create_check_constraint(name, "sessions", condition)
    with op.batch_alter_table("price_tiers") as batch:
        batch.add_column(sa.Column("seat_category", sa.String(40)))
        batch.add_column(sa.Column("sale_opens_at", WHEN))
        batch.add_column(sa.Column("sale_closes_at", WHEN))
    op.create_index("ix_price_tiers_one_per_category", "price_tiers",
                    ["session_id", "seat_category"], unique=True)
    op.create_table(
        "products",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.Integer,
                  sa.ForeignKey("events.id", name="fk_products_event_id_events")),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False, server_default="pass"),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
        sa.Column("scope_kind", sa.String(10), nullable=False),
        sa.Column("scope", sa.JSON, nullable=False),
        sa.Column("zone_id", sa.Integer, nullable=False, server_default="0"),
        sa.Column("daily_limit", sa.Integer, nullable=False, server_default="0"),
        sa.Column("valid_from", WHEN),
        sa.Column("valid_until", WHEN),
        sa.Column("sale_opens_at", WHEN),
        sa.Column("sale_closes_at", WHEN),
        sa.UniqueConstraint("code", name="uq_products_code"),
        sa.CheckConstraint("kind IN ('pass')", name="ck_products_kind_known"),
        sa.CheckConstraint("scope_kind IN ('sessions', 'venues')",
                           name="ck_products_scope_kind_known"),
        sa.CheckConstraint("amount >= 0", name="ck_products_amount_not_negative"),
    )


def _inventory() -> None:
    with op.batch_alter_table("session_seats") as batch:
        batch.add_column(sa.Column("order_id", sa.Integer))
        batch.add_column(sa.Column("held_until", WHEN))
        batch.add_column(sa.Column("zone_id", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("row_key", sa.String(41), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("position", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("rank", sa.Integer, nullable=False, server_default="0"))
        batch.drop_constraint("ck_session_seats_status_known", type_="check")
        batch.create_check_constraint("status_known",
                                      "status IN ('available', 'held', 'sold')")
        batch.create_check_constraint(
            "hold_names_order",
            "status <> 'held' OR (order_id IS NOT NULL AND held_until IS NOT NULL)")
    op.create_index("ix_session_seats_zone_row", "session_seats",
                    ["session_id", "zone_id", "row_key", "position"])
    op.create_index("ix_session_seats_order_id", "session_seats", ["order_id"])
    op.create_table(
        "quotas",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("session_id", sa.Integer,
                  sa.ForeignKey("sessions.id", name="fk_quotas_session_id_sessions")),
        sa.Column("zone_id", sa.Integer),
        sa.Column("price_tier_id", sa.Integer),
        sa.Column("product_id", sa.Integer),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("used", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("key", name="uq_quotas_key"),
        sa.CheckConstraint("kind IN ('zone', 'tier', 'ga', 'pass')", name="ck_quotas_kind_known"),
        sa.CheckConstraint("used <= capacity", name="ck_quotas_used_within_capacity"),
        sa.CheckConstraint("used >= 0", name="ck_quotas_used_not_negative"),
    )


def _sales() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("order_id", sa.Integer))
    op.create_index("ix_tickets_order_id", "tickets", ["order_id"])
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("session_id", sa.Integer,
                  sa.ForeignKey("sessions.id", name="fk_orders_session_id_sessions")),
        sa.Column("buyer", sa.String(80)),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("state", sa.String(20), nullable=False, server_default="pending_payment"),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("paid_at", WHEN),
        sa.Column("payment_provider", sa.String(40)),
        sa.Column("payment_reference", sa.String(200)),
        sa.UniqueConstraint("number", name="uq_orders_number"),
        sa.UniqueConstraint("payment_provider", "payment_reference",
                            name="uq_orders_payment_provider"),
        sa.CheckConstraint("state IN ('pending_payment', 'paid', 'partially_refunded', "
                           "'refunded', 'expired', 'cancelled')", name="ck_orders_state_known"),
        sa.CheckConstraint("total >= 0", name="ck_orders_total_not_negative"),
    )
    op.create_index("ix_orders_state_expires_at", "orders", ["state", "expires_at"])
    op.create_index("ix_orders_session_id_buyer", "orders", ["session_id", "buyer"])
    op.create_table(
        "order_lines",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("order_id", sa.Integer,
                  sa.ForeignKey("orders.id", name="fk_order_lines_order_id_orders"),
                  nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("session_id", sa.Integer),
        sa.Column("seat_id", sa.Integer),
        sa.Column("zone_id", sa.Integer, nullable=False, server_default="0"),
        sa.Column("price_tier_id", sa.Integer),
        sa.Column("product_id", sa.Integer),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
        sa.Column("holder_id", sa.Integer,
                  sa.ForeignKey("holders.id", name="fk_order_lines_holder_id_holders")),
        sa.Column("holder_hash", sa.String(64)),
        sa.Column("doc_hash", sa.String(64)),
        sa.Column("state", sa.String(10), nullable=False, server_default="held"),
        sa.Column("ticket_id", sa.BigInteger),
        sa.Column("holds", sa.JSON, nullable=False),
        sa.CheckConstraint("kind IN ('seat', 'ga', 'pass')", name="ck_order_lines_kind_known"),
        sa.CheckConstraint("state IN ('held', 'issued', 'released', 'refunded')",
                           name="ck_order_lines_state_known"),
        sa.CheckConstraint("amount >= 0", name="ck_order_lines_amount_not_negative"),
    )
    op.create_index("ix_order_lines_order_id", "order_lines", ["order_id"])
    op.create_index("ix_order_lines_holder_hash", "order_lines", ["holder_hash"])
    live = "doc_hash IS NOT NULL AND state IN ('held', 'issued')"
    op.create_index("ix_order_lines_one_live_per_document", "order_lines",
                    ["session_id", "doc_hash"], unique=True,
                    sqlite_where=sa.text(live), postgresql_where=sa.text(live))
    op.create_table(
        "order_quotas",
        sa.Column("order_id", sa.Integer,
                  sa.ForeignKey("orders.id", name="fk_order_quotas_order_id_orders"),
                  primary_key=True),
        sa.Column("quota_id", sa.Integer,
                  sa.ForeignKey("quotas.id", name="fk_order_quotas_quota_id_quotas"),
                  primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.CheckConstraint("n >= 0", name="ck_order_quotas_n_not_negative"),
    )
    op.create_index("ix_order_quotas_quota_id", "order_quotas", ["quota_id"])
    op.create_table(
        "purchase_counts",
        sa.Column("scope", sa.String(24), primary_key=True),
        sa.Column("party", sa.String(90), primary_key=True),
        sa.Column("used", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint("used >= 0", name="ck_purchase_counts_used_not_negative"),
    )


def _natural(text: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                 for p in re.split(r"(\d+)", text) if p)


def _backfill_places(conn: sa.Connection) -> None:
    """Each session seat's zone, row, position in its row and rank, from the venue map (the
    same rule as cloud/inventory/places.py at this revision)."""
    seats = sa.table("seats", sa.column("id"), sa.column("venue_id"), sa.column("zone_id"),
                     sa.column("level"), sa.column("row"), sa.column("number"),
                     sa.column("removed"))
    session_seats = sa.table("session_seats", sa.column("seat_id"), sa.column("zone_id"),
                             sa.column("row_key"), sa.column("position"), sa.column("rank"))
    by_venue: dict[int, list] = {}
    for r in conn.execute(sa.select(seats)):
        by_venue.setdefault(r.venue_id, []).append(r)
    updates = []
    for venue_seats in by_venue.values():
        rows: dict[tuple, list] = {}
        for s in venue_seats:
            rows.setdefault((s.level, s.row), []).append(s)
        ordered = []
        for (level, row), members in rows.items():
            members.sort(key=lambda s: _natural(s.number))
            centre = (len(members) - 1) / 2
            for position, s in enumerate(members, start=1):
                ordered.append(((_natural(level), _natural(row), abs(position - 1 - centre),
                                 position), s, f"{level}/{row}", position))
        ordered.sort(key=lambda o: o[0])
        updates += [{"sid": s.id, "z": s.zone_id, "rk": row_key, "p": position, "r": rank}
                    for rank, (_, s, row_key, position) in enumerate(ordered, start=1)]
    if updates:
        conn.execute(sa.update(session_seats).where(session_seats.c.seat_id == sa.bindparam("sid"))
                     .values(zone_id=sa.bindparam("z"), row_key=sa.bindparam("rk"),
                             position=sa.bindparam("p"), rank=sa.bindparam("r")), updates)


def downgrade() -> None:
    for table in ("purchase_counts", "order_quotas", "order_lines", "orders", "quotas",
                  "products"):
        op.drop_table(table)
    op.drop_index("ix_tickets_order_id", "tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("order_id")
    op.execute(sa.text("UPDATE session_seats SET status = 'available' WHERE status = 'held'"))
    op.drop_index("ix_session_seats_order_id", "session_seats")
    op.drop_index("ix_session_seats_zone_row", "session_seats")
    with op.batch_alter_table("session_seats") as batch:
        # names are given as upgrade() gave them (the naming convention prefixes them); the
        # old status check gets back the name 0008 gave it
        batch.drop_constraint("hold_names_order", type_="check")
        batch.drop_constraint("status_known", type_="check")
        batch.create_check_constraint("ck_session_seats_status_known",
                                      "status IN ('available', 'sold')")
        for column in ("rank", "position", "row_key", "zone_id", "held_until", "order_id"):
            batch.drop_column(column)
    op.drop_index("ix_price_tiers_one_per_category", "price_tiers")
    with op.batch_alter_table("price_tiers") as batch:
        for column in ("sale_closes_at", "sale_opens_at", "seat_category"):
            batch.drop_column(column)
    if not _sqlite():
        for name, _ in SESSION_CHECKS:
            op.drop_constraint(name, "sessions", type_="check")
        op.drop_constraint("limits_positive", "events", type_="check")
    for name, _, _ in reversed(SESSION_COLUMNS):
        op.drop_column("sessions", name)  # SQLite drops a column in place (3.35 and later)
    op.drop_column("events", "holder_limit")
    op.drop_column("events", "buyer_limit")
