"""The sales tables: tickets and their holders."""

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
    sa.CheckConstraint("state IN ('issued', 'void', 'refunded')", name="state_known"),
    sa.CheckConstraint("kind IN ('session', 'sessions', 'venues')", name="kind_known"),
    sa.Index("ix_tickets_session_state", "session_id", "state"),
    sa.Index("ix_tickets_one_live_per_seat", "session_id", "seat_id", unique=True,
             sqlite_where=sa.text("state = 'issued' AND seat_id IS NOT NULL"),
             postgresql_where=sa.text("state = 'issued' AND seat_id IS NOT NULL")),
)
