"""Venues, their zones and gates, and the seat map.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "venues",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(400), nullable=False, server_default=""),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="Asia/Shanghai"),
        sa.UniqueConstraint("code", name="uq_venues_code"),
    )
    op.create_table(
        "zones",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id", name="fk_zones_venue_id_venues"),
                  nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.UniqueConstraint("venue_id", "code", name="uq_zones_venue_id"),
    )
    op.create_table(
        "gates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id", name="fk_gates_venue_id_venues"),
                  nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("reentry", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("realname_mode", sa.String(20), nullable=False, server_default="ticket"),
        sa.Column("open_before_min", sa.Integer, nullable=False, server_default="30"),
        sa.Column("close_after_min", sa.Integer, nullable=False, server_default="60"),
        sa.UniqueConstraint("venue_id", "code", name="uq_gates_venue_id"),
        sa.CheckConstraint("realname_mode IN ('ticket', 'ticket_and_id', 'id_only')",
                           name="ck_gates_realname_mode_known"),
    )
    op.create_table(
        "gate_zones",
        sa.Column("gate_id", sa.Integer, sa.ForeignKey("gates.id", name="fk_gate_zones_gate_id_gates",
                                                      ondelete="CASCADE"), primary_key=True),
        sa.Column("zone_id", sa.Integer, sa.ForeignKey("zones.id", name="fk_gate_zones_zone_id_zones",
                                                      ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "seats",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id", name="fk_seats_venue_id_venues"),
                  nullable=False),
        sa.Column("zone_id", sa.Integer, sa.ForeignKey("zones.id", name="fk_seats_zone_id_zones"),
                  nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("row", sa.String(20), nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("damaged", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("removed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("obstructed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("venue_id", "level", "row", "number", name="uq_seats_venue_id"),
    )


def downgrade() -> None:
    for table in ("seats", "gate_zones", "gates", "zones", "venues"):
        op.drop_table(table)
