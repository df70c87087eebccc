"""The storefront's tables: a waiting room per session (issue 17 §2)."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import metadata

# A session's waiting room: its own settings (NULL: the hub's WAITING_ROOM_RATE and
# WAITING_ROOM_BURST; a rate of 0 turns the room off for the session) and the queue's state.
# ``issued`` numbers have been handed out, one by one, by one UPDATE … RETURNING each; the
# first ``frontier`` of them were admitted at ``anchor_us`` (microseconds since the epoch), and
# from then on ``anchor_rate`` more are admitted every second. Every number handed out moves
# the anchor to its moment, so a rate changed later counts from that moment on and an
# admission already made is never taken back.
waiting_rooms = sa.Table(
    "waiting_rooms", metadata,
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id"), primary_key=True),
    sa.Column("rate", sa.Float),
    sa.Column("burst", sa.Integer),
    sa.Column("issued", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("frontier", sa.Float, nullable=False, server_default="0"),
    sa.Column("anchor_us", sa.BigInteger),
    sa.Column("anchor_rate", sa.Float, nullable=False, server_default="0"),
    sa.CheckConstraint("rate >= 0", name="rate_not_negative"),
    sa.CheckConstraint("burst >= 1", name="burst_positive"),
    sa.CheckConstraint("issued >= 0", name="issued_not_negative"),
)
