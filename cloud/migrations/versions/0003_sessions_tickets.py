"""Signing keys, events and sessions, holders, and tickets with their signed codes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("key_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("private_pem", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("key_id BETWEEN 1 AND 255", name="ck_signing_keys_key_id_range"),
        sa.CheckConstraint("state IN ('published', 'active', 'retired')",
                           name="ck_signing_keys_state_known"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.UniqueConstraint("code", name="uq_events_code"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id", name="fk_sessions_event_id_events"),
                  nullable=False),
        sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id", name="fk_sessions_venue_id_venues"),
                  nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gates_open_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("ends_at > starts_at", name="ck_sessions_ends_after_start"),
    )
    op.create_table(
        "holders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("doc_type", sa.String(40), nullable=False),
        sa.Column("doc_number", sa.String(40), nullable=False),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("role", sa.String(12), nullable=False),
        sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id", name="fk_tickets_session_id_sessions")),
        sa.Column("scope", sa.JSON, nullable=False),
        sa.Column("venues", sa.JSON, nullable=False),
        sa.Column("zone_id", sa.Integer),
        sa.Column("seat_id", sa.Integer, sa.ForeignKey("seats.id", name="fk_tickets_seat_id_seats")),
        sa.Column("valid_from", sa.DateTime(timezone=True)),
        sa.Column("valid_until", sa.DateTime(timezone=True)),
        sa.Column("daily_limit", sa.Integer, nullable=False, server_default="0"),
        sa.Column("serial", sa.Integer, nullable=False, server_default="0"),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("code", sa.String(200), nullable=False),
        sa.Column("state", sa.String(10), nullable=False, server_default="issued"),
        sa.Column("rfid_uid", sa.String(20)),
        sa.Column("holder_id", sa.Integer, sa.ForeignKey("holders.id", name="fk_tickets_holder_id_holders")),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("number", name="uq_tickets_number"),
        sa.UniqueConstraint("rfid_uid", name="uq_tickets_rfid_uid"),
        sa.CheckConstraint("state IN ('issued', 'void', 'refunded')", name="ck_tickets_state_known"),
        sa.CheckConstraint("kind IN ('session', 'sessions', 'venues')", name="ck_tickets_kind_known"),
    )
    # One live ticket per seat per session, whatever the code above it does.
    op.bulk_insert(sa.table("counters", sa.column("name", sa.String),
                            sa.column("value", sa.BigInteger)), [{"name": "ticket", "value": 0}])
    op.create_index("ix_tickets_one_live_per_seat", "tickets", ["session_id", "seat_id"],
                    unique=True, sqlite_where=sa.text("state = 'issued' AND seat_id IS NOT NULL"),
                    postgresql_where=sa.text("state = 'issued' AND seat_id IS NOT NULL"))


def downgrade() -> None:
    op.execute("DELETE FROM counters WHERE name = 'ticket'")
    op.drop_index("ix_tickets_one_live_per_seat", table_name="tickets")
    for table in ("tickets", "holders", "sessions", "events", "signing_keys"):
        op.drop_table(table)
