"""Central ops' tables: what the hub counts and finds among the entries appliances push
(conflicts, counts per minute, first admissions, tickets sold per session), alert rules and
alerts, and wall display links."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

# What the hub finds among reported entries: a single-entry ticket admitted by two appliances
# apart from each other, an admission made with a cursor that already carried the ticket's
# revocation (must never happen), or one made before the revocation reached the venue.
conflicts = sa.Table(
    "conflicts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("ticket_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("entry_ids", sa.JSON, nullable=False),
    sa.Column("detail", sa.String(400), nullable=False),
    sa.Column("detected_at", UtcDateTime(), nullable=False),
    sa.Column("reviewed_at", UtcDateTime()),
    sa.Column("reviewed_by", sa.String(80)),
    sa.Column("note", sa.Text),
    sa.CheckConstraint("kind IN ('double_admission', 'admitted_after_revocation', "
                       "'admitted_before_revocation_known')", name="kind_known"),
)


# Entries counted per session, venue, lane, zone and minute, in the transaction that stores
# them (cloud/ops/attendance.py count_entries): the dashboard reads thousands of these rows, not millions
# of entries. session_id 0 = no session; lane '' = none; zone_id 0 = not known.
entry_minutes = sa.Table(
    "entry_minutes", metadata,
    sa.Column("session_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("venue_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("lane", sa.String(40), primary_key=True),
    sa.Column("zone_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("minute", UtcDateTime(), primary_key=True),
    sa.Column("admitted_in", sa.Integer, nullable=False, server_default="0"),
    sa.Column("admitted_out", sa.Integer, nullable=False, server_default="0"),
    sa.Column("refused", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_in", sa.Integer, nullable=False, server_default="0"),
    sa.Column("manual_in", sa.Integer, nullable=False, server_default="0"),  # by ticket number
    sa.Index("ix_entry_minutes_minute", "minute", "venue_id"),
)


# One row per ticket per session it has been admitted to: its primary key decides, under any
# concurrency, which admission is the ticket's first (counted as 'entered' once).
entered_tickets = sa.Table(
    "entered_tickets", metadata,
    sa.Column("session_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.String(36), nullable=False),
)


# Live (issued) tickets per session, kept by triggers on tickets (migration 0012) in the
# transaction of every sale, refund and void: the dashboard reads one row per session.
session_sold = sa.Table(
    "session_sold", metadata,
    sa.Column("session_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sold", sa.BigInteger, nullable=False, server_default="0"),
)


# Alert thresholds set by ops; a kind without a row uses the default in cloud/ops/alerts.py.
alert_rules = sa.Table(
    "alert_rules", metadata,
    sa.Column("kind", sa.String(30), primary_key=True),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("window_min", sa.Integer, nullable=False, server_default="5"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("updated_by", sa.String(80), nullable=False),
    sa.CheckConstraint("threshold >= 0", name="threshold_not_negative"),
    sa.CheckConstraint("window_min BETWEEN 1 AND 240", name="window_range"),
)


# Alerts raised and cleared by cloud/ops/alerts.py evaluate(); at most one open per rule and subject.
alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("subject", sa.String(80), nullable=False),
    sa.Column("venue_id", sa.Integer),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("detail", sa.String(400), nullable=False),
    sa.Column("raised_at", UtcDateTime(), nullable=False),
    sa.Column("cleared_at", UtcDateTime()),
    sa.Index("ix_alerts_one_open", "kind", "subject", unique=True,
             sqlite_where=sa.text("cleared_at IS NULL"),
             postgresql_where=sa.text("cleared_at IS NULL")),
    sa.Index("ix_alerts_raised_at", "raised_at"),
)


# Long-lived links for a wall display, made by an ops user; only the token's SHA-256 is kept.
display_links = sa.Table(
    "display_links", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_used_at", UtcDateTime()),
    sa.Column("revoked_at", UtcDateTime()),
)
