"""The fleet's tables: appliances, the commands waiting for them, the lanes they report, and
the entries they push, as received."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

# An appliance is registered for a venue (state 'pending', with a one-time enrollment token),
# enrolls once (state 'active', with a credential) and may be revoked. Only hashes of the
# token and the credential are stored.
appliances = sa.Table(
    "appliances", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("token_hash", sa.String(64), unique=True),
    sa.Column("token_expires_at", UtcDateTime()),
    sa.Column("credential_hash", sa.String(64), unique=True),
    sa.Column("enrolled_at", UtcDateTime()),
    sa.Column("last_seen_at", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("reported", sa.JSON),  # the last heartbeat: health, cursors, queue, version
    sa.Column("clock_skew_ms", sa.BigInteger),
    sa.CheckConstraint("state IN ('pending', 'active', 'revoked')", name="state_known"),
)


# Commands for an appliance, handed over in its next heartbeat answer.
appliance_commands = sa.Table(
    "appliance_commands", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("appliance_id", sa.Integer, sa.ForeignKey("appliances.id"), nullable=False),
    sa.Column("command", sa.String(20), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("delivered_at", UtcDateTime()),
    sa.CheckConstraint("command IN ('resync', 'roll_credential', 'wipe')", name="command_known"),
)


# Entries reported by appliances, stored once forever by their UUID.
entries = sa.Table(
    "entries", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("appliance_id", sa.Integer, sa.ForeignKey("appliances.id"), nullable=False),
    sa.Column("venue_id", sa.Integer, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("lane", sa.String(40)),
    sa.Column("direction", sa.String(3), nullable=False),
    sa.Column("ticket_id", sa.BigInteger, index=True),
    sa.Column("session_id", sa.Integer),
    sa.Column("admitted", sa.Boolean, nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("cursor", sa.BigInteger, nullable=False),
    # indexed: partners' webhooks read the admissions received since their cursor
    sa.Column("received_at", UtcDateTime(), nullable=False, index=True),
    # the scan kind (qr, rfid, id_card, manual, override) and, for a ticket number typed by
    # staff or an override, the staff member; both null from appliances that did not say
    sa.Column("kind", sa.String(20)),
    sa.Column("staff", sa.String(64)),
)


# Lanes as each appliance last reported them in its heartbeat (cloud/fleet/appliances.py): an entry's
# lane leads to its gate through these where the hub's own ``lanes`` define none.
appliance_lanes = sa.Table(
    "appliance_lanes", metadata,
    sa.Column("appliance_id", sa.Integer, sa.ForeignKey("appliances.id"), primary_key=True,
              autoincrement=False),
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("gate_code", sa.String(64)),
    sa.Column("name", sa.String(128), nullable=False, server_default=""),
    sa.Column("reported_at", UtcDateTime(), nullable=False),
)
