"""Signed-in staff sessions for the hub's pages, kept on the hub.

The browser holds a random 256-bit token (inside the signed session cookie); the hub keeps
only its SHA-256. A session ends on logout, after ``IDLE_TIMEOUT`` without a request, and at
``ABSOLUTE_LIFETIME`` after sign-in whatever happens; an ended session never comes back, and a
disabled account's sessions stop at its next request. The role is read from the account on
every request, so a changed role takes effect at once, and so is ``must_change`` (an admin reset
the password: the pages open nothing but "set a new password" until it is done).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from cloud.staff.staff import Staff
from cloud.staff.tables import staff, staff_sessions
from sync.timeutil import utcnow

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_LIFETIME = timedelta(hours=12)
# last_seen_at is written at most this often: a page load is a read, not a write, mostly
TOUCH_EVERY = timedelta(minutes=1)
KEEP_ENDED = timedelta(days=30)


class SessionEnded(Exception):
    """The session is unknown, logged out, idle too long, too old, or its account disabled;
    ``reason`` is one of ``unknown``, ``ended``, ``idle``, ``expired``, ``disabled``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Signed:
    token: str
    staff: Staff


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def start_session(conn: sa.Connection, who: Staff, now: datetime | None = None) -> str:
    """A new session for a staff member who just signed in; returns its token (kept by the
    browser only). Old ended sessions are swept here."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    conn.execute(sa.delete(staff_sessions).where(
        staff_sessions.c.created_at < now - ABSOLUTE_LIFETIME - KEEP_ENDED))
    conn.execute(sa.insert(staff_sessions).values(
        token_hash=_hash(token), staff_id=who.id, created_at=now, last_seen_at=now))
    return token


def check_session(conn: sa.Connection, token: str, now: datetime | None = None) -> Staff:
    """The staff member of a live session (and the session kept alive), or SessionEnded."""
    now = now or utcnow()
    row = conn.execute(
        sa.select(staff_sessions.c.id, staff_sessions.c.created_at,
                  staff_sessions.c.last_seen_at, staff_sessions.c.ended_at,
                  staff.c.id.label("staff_id"), staff.c.username, staff.c.role,
                  staff.c.disabled)
        .join(staff, staff.c.id == staff_sessions.c.staff_id)
        .where(staff_sessions.c.token_hash == _hash(token))).first()
    if row is None:
        raise SessionEnded("unknown")
    if row.ended_at is not None:
        raise SessionEnded("ended")
    reason = ("disabled" if row.disabled
              else "expired" if now >= _utc(row.created_at) + ABSOLUTE_LIFETIME
              else "idle" if now >= _utc(row.last_seen_at) + IDLE_TIMEOUT
              else None)
    if reason:
        conn.execute(sa.update(staff_sessions).where(staff_sessions.c.id == row.id)
                     .values(ended_at=now))
        raise SessionEnded(reason)
    if now - _utc(row.last_seen_at) >= TOUCH_EVERY:
        conn.execute(sa.update(staff_sessions).where(staff_sessions.c.id == row.id)
                     .values(last_seen_at=now))
    return Staff(row.staff_id, row.username, row.role)


def end_session(conn: sa.Connection, token: str, now: datetime | None = None) -> None:
    conn.execute(sa.update(staff_sessions).where(
        staff_sessions.c.token_hash == _hash(token), staff_sessions.c.ended_at.is_(None))
        .values(ended_at=now or utcnow()))


def end_sessions_of(conn: sa.Connection, staff_id: int, now: datetime | None = None) -> int:
    """End every live session of an account (its password or role was changed); how many."""
    return conn.execute(sa.update(staff_sessions).where(
        staff_sessions.c.staff_id == staff_id, staff_sessions.c.ended_at.is_(None))
        .values(ended_at=now or utcnow())).rowcount
