"""The inventory's table: each session's own seat configuration."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

# A session's own seat configuration, copied from the venue map when the session is created.
# Selling claims a row with a conditional UPDATE (status available -> sold).
session_seats = sa.Table(
    "session_seats", metadata,
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id"), primary_key=True),
    sa.Column("seat_id", sa.Integer, sa.ForeignKey("seats.id"), primary_key=True),
    sa.Column("category", sa.String(12), nullable=False),
    sa.Column("status", sa.String(10), nullable=False, server_default="available"),
    sa.Column("reserved_for", sa.String(200)),
    sa.Column("reserved_until", UtcDateTime()),
    sa.CheckConstraint("category IN ('sellable', 'registered', 'occupied', 'emergency')",
                       name="category_known"),
    sa.CheckConstraint("status IN ('available', 'sold')", name="status_known"),
)
