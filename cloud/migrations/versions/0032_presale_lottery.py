"""The presale lottery: presales with their lots, buyers' applications and the holders they
name, per-buyer counters; and an order's kind (``sale``, or ``presale`` for the order that
pays an application and later holds its tickets).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)

APPLICATION_STATES = ("'applied', 'void', 'refused', 'won', 'lost', 'refunding', 'refunded', "
                      "'seated'")


def upgrade() -> None:
    # a plain ALTER TABLE on both databases: what kinds exist is the sales code's to check
    op.add_column("orders", sa.Column("kind", sa.String(10), nullable=False,
                                      server_default="sale"))
    _presales()
    op.create_table(
        "presale_lots",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("presale_id", sa.Integer, nullable=False),
        sa.Column("session_id", sa.Integer, nullable=False),
        sa.Column("price_tier_id", sa.Integer, nullable=False),
        sa.Column("tickets", sa.Integer, nullable=False),
        sa.CheckConstraint("tickets > 0", name="ck_presale_lots_tickets_positive"),
        sa.ForeignKeyConstraint(["presale_id"], ["presales.id"],
                                name="fk_presale_lots_presale_id_presales"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"],
                                name="fk_presale_lots_session_id_sessions"),
        sa.ForeignKeyConstraint(["price_tier_id"], ["price_tiers.id"],
                                name="fk_presale_lots_price_tier_id_price_tiers"),
        sa.PrimaryKeyConstraint("id", name="pk_presale_lots"),
        sa.UniqueConstraint("presale_id", "session_id", "price_tier_id",
                            name="uq_presale_lots_presale_id"),
    )
    _applications()
    op.create_table(
        "presale_holders",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("application_id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("person", sa.String(20), nullable=False),
        sa.Column("holder_id", sa.Integer, nullable=False),
        sa.Column("session_id", sa.Integer, nullable=False),
        sa.Column("doc_hash", sa.String(64), nullable=False),
        sa.Column("live", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.ForeignKeyConstraint(["application_id"], ["presale_applications.id"],
                                name="fk_presale_holders_application_id_presale_applications"),
        sa.ForeignKeyConstraint(["holder_id"], ["holders.id"],
                                name="fk_presale_holders_holder_id_holders"),
        sa.PrimaryKeyConstraint("id", name="pk_presale_holders"),
    )
    op.create_index("ix_presale_holders_application_id", "presale_holders", ["application_id"])
    op.create_index("ix_presale_holders_one_live_per_document", "presale_holders",
                    ["session_id", "doc_hash"], unique=True,
                    sqlite_where=sa.text("live"), postgresql_where=sa.text("live"))
    op.create_table(
        "presale_counts",
        sa.Column("presale_id", sa.Integer, nullable=False),
        sa.Column("party", sa.String(90), nullable=False),
        sa.Column("used", sa.Integer, nullable=False),
        sa.CheckConstraint("used >= 0", name="ck_presale_counts_used_not_negative"),
        sa.ForeignKeyConstraint(["presale_id"], ["presales.id"],
                                name="fk_presale_counts_presale_id_presales"),
        sa.PrimaryKeyConstraint("presale_id", "party", name="pk_presale_counts"),
    )


def _presales() -> None:
    op.create_table(
        "presales",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(10), nullable=False, server_default="draft"),
        sa.Column("opens_at", WHEN, nullable=False),
        sa.Column("closes_at", WHEN, nullable=False),
        sa.Column("choose_closes_at", WHEN),
        sa.Column("real_name", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("max_quantity", sa.Integer, nullable=False, server_default="4"),
        sa.Column("buyer_limit", sa.Integer),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("payment_minutes", sa.Integer, nullable=False, server_default="15"),
        sa.Column("frozen_at", WHEN),
        sa.Column("list_sha256", sa.String(64)),
        sa.Column("list_file", sa.LargeBinary),
        sa.Column("seed_first_by", sa.String(80)),
        sa.Column("seed_first_hash", sa.String(64)),
        sa.Column("seed", sa.String(200)),
        sa.Column("seed_by", sa.String(200)),
        sa.Column("seed_fixed_at", WHEN),
        sa.Column("result_source", sa.String(10)),
        sa.Column("result_sha256", sa.String(64)),
        sa.Column("result_file", sa.LargeBinary),
        sa.Column("drawn_at", WHEN),
        sa.Column("drawn_by", sa.String(80)),
        sa.Column("assigned_at", WHEN),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.CheckConstraint("state IN ('draft', 'open', 'frozen', 'drawn', 'assigned')",
                           name="ck_presales_state_known"),
        sa.CheckConstraint("opens_at < closes_at", name="ck_presales_window_ordered"),
        sa.CheckConstraint("max_quantity BETWEEN 1 AND 10",
                           name="ck_presales_max_quantity_range"),
        sa.CheckConstraint("buyer_limit IS NULL OR buyer_limit >= 1",
                           name="ck_presales_buyer_limit_positive"),
        sa.CheckConstraint("payment_minutes BETWEEN 1 AND 1440",
                           name="ck_presales_payment_minutes_range"),
        sa.CheckConstraint("result_source IS NULL OR result_source IN ('draw', 'import')",
                           name="ck_presales_result_source_known"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"],
                                name="fk_presales_event_id_events"),
        sa.PrimaryKeyConstraint("id", name="pk_presales"),
    )
    op.create_index("ix_presales_event_id", "presales", ["event_id"])


def _applications() -> None:
    op.create_table(
        "presale_applications",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("presale_id", sa.Integer, nullable=False),
        sa.Column("lot_id", sa.Integer, nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("buyer", sa.String(80), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("state", sa.String(10), nullable=False, server_default="applied"),
        sa.Column("reason", sa.String(80)),
        sa.Column("rank", sa.Integer),
        sa.Column("refund_id", sa.Integer),
        sa.Column("created_at", WHEN, nullable=False),
        sa.CheckConstraint("quantity BETWEEN 1 AND 10",
                           name="ck_presale_applications_quantity_range"),
        sa.CheckConstraint("amount >= 0", name="ck_presale_applications_amount_not_negative"),
        sa.CheckConstraint(f"state IN ({APPLICATION_STATES})",
                           name="ck_presale_applications_state_known"),
        sa.ForeignKeyConstraint(["presale_id"], ["presales.id"],
                                name="fk_presale_applications_presale_id_presales"),
        sa.ForeignKeyConstraint(["lot_id"], ["presale_lots.id"],
                                name="fk_presale_applications_lot_id_presale_lots"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"],
                                name="fk_presale_applications_order_id_orders"),
        sa.PrimaryKeyConstraint("id", name="pk_presale_applications"),
        sa.UniqueConstraint("number", name="uq_presale_applications_number"),
        sa.UniqueConstraint("order_id", name="uq_presale_applications_order_id"),
    )
    op.create_index("ix_presale_applications_presale_state", "presale_applications",
                    ["presale_id", "state"])
    op.create_index("ix_presale_applications_buyer", "presale_applications", ["buyer"])


def downgrade() -> None:
    op.drop_table("presale_holders")
    op.drop_table("presale_counts")
    op.drop_table("presale_applications")
    op.drop_table("presale_lots")
    op.drop_table("presales")
    op.drop_column("orders", "kind")
