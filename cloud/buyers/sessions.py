"""Buyers' sessions: a bearer token for the buyers' API, held by the client; the hub keeps its
SHA-256, when it was made and last used, and the client's user agent and masked address, so
that a buyer can list their sessions and end one, or all but the one in hand.

A session ends when its buyer ends it, IDLE_TIMEOUT after its last use, at LIFETIME after
sign-in whatever happens, when the password is reset or changed (the others), and when the
account is disabled. An ended session never comes back. Buyer tokens start with ``wkb_``,
staff API tokens with ``wkt_``: neither is accepted where the other is expected.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from cloud.buyers.codes import tidy_codes
from cloud.buyers.errors import BuyerError
from cloud.buyers.tables import buyer_sessions, buyers
from sync.timeutil import utcnow

PREFIX = "wkb_"
LIFETIME = timedelta(days=30)
IDLE_TIMEOUT = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=5)
KEEP_ENDED = timedelta(days=30)
MAX_AGENT = 200


@dataclass(frozen=True)
class BuyerSession:
    """The buyer a presented token signs in, and which session it is."""

    buyer_id: int
    session_id: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mask_address(address: str | None) -> str | None:
    """The network of a client address, not the machine: 203.0.113.7 → 203.0.113.*, an IPv6
    address → its /48."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 4:
        return ".".join(str(ip).split(".")[:3]) + ".*"
    return str(ipaddress.ip_network(f"{ip}/48", strict=False))


def start_session(conn: sa.Connection, buyer_id: int, *, user_agent: str | None = None,
                  address: str | None = None, now: datetime | None = None) -> str:
    """A new session for a buyer who just signed in; its token (kept by the client only).
    Sessions ended long ago are swept here."""
    now = now or utcnow()
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(sa.delete(buyer_sessions).where(buyer_sessions.c.buyer_id == buyer_id,
                                                 buyer_sessions.c.expires_at < now - KEEP_ENDED))
    agent = "".join(c for c in (user_agent or "") if c.isprintable())[:MAX_AGENT] or None
    conn.execute(sa.insert(buyer_sessions).values(
        buyer_id=buyer_id, token_hash=_hash(token), created_at=now, last_seen_at=now,
        expires_at=now + LIFETIME, user_agent=agent, address_masked=mask_address(address)))
    return token


def check_session(conn: sa.Connection, token: str, now: datetime | None = None) -> BuyerSession:
    """The buyer of a live session (kept alive), or ``bad_session``."""
    now = now or utcnow()
    if not token.startswith(PREFIX):
        raise BuyerError("bad_session")
    row = conn.execute(sa.select(buyer_sessions.c.id, buyer_sessions.c.buyer_id,
                                 buyer_sessions.c.last_seen_at, buyer_sessions.c.expires_at,
                                 buyer_sessions.c.ended_at, buyers.c.state)
                       .join(buyers, buyers.c.id == buyer_sessions.c.buyer_id)
                       .where(buyer_sessions.c.token_hash == _hash(token))).first()
    if row is None or row.ended_at is not None:
        raise BuyerError("bad_session")
    if row.state != "active" or now >= row.expires_at or now >= row.last_seen_at + IDLE_TIMEOUT:
        conn.execute(sa.update(buyer_sessions).where(buyer_sessions.c.id == row.id)
                     .values(ended_at=now))
        raise BuyerError("bad_session")
    if now - row.last_seen_at >= TOUCH_EVERY:
        conn.execute(sa.update(buyer_sessions).where(buyer_sessions.c.id == row.id)
                     .values(last_seen_at=now))
    return BuyerSession(row.buyer_id, row.id)


def list_sessions(conn: sa.Connection, buyer_id: int, now: datetime | None = None) -> list[sa.Row]:
    """A buyer's live sessions, newest first (never a token: made, last used, expiry, user
    agent, masked address)."""
    now = now or utcnow()
    return conn.execute(sa.select(
        buyer_sessions.c.id, buyer_sessions.c.created_at, buyer_sessions.c.last_seen_at,
        buyer_sessions.c.expires_at, buyer_sessions.c.user_agent,
        buyer_sessions.c.address_masked).where(
        buyer_sessions.c.buyer_id == buyer_id, buyer_sessions.c.ended_at.is_(None),
        buyer_sessions.c.expires_at > now,
        buyer_sessions.c.last_seen_at > now - IDLE_TIMEOUT)
        .order_by(buyer_sessions.c.id.desc())).all()


def end_session(conn: sa.Connection, buyer_id: int, session_id: int,
                now: datetime | None = None) -> None:
    """End one of the buyer's own sessions (``unknown_buyer_session`` for anyone else's)."""
    row = conn.execute(sa.select(buyer_sessions.c.ended_at).where(
        buyer_sessions.c.id == session_id, buyer_sessions.c.buyer_id == buyer_id)).first()
    if row is None:
        raise BuyerError("unknown_buyer_session", session_id=session_id)
    if row.ended_at is None:
        conn.execute(sa.update(buyer_sessions).where(buyer_sessions.c.id == session_id)
                     .values(ended_at=now or utcnow()))


def end_sessions(conn: sa.Connection, buyer_id: int, *, keep: int | None = None,
                 now: datetime | None = None) -> int:
    """End every live session of the buyer but ``keep``; how many were ended."""
    query = sa.update(buyer_sessions).where(buyer_sessions.c.buyer_id == buyer_id,
                                            buyer_sessions.c.ended_at.is_(None))
    if keep is not None:
        query = query.where(buyer_sessions.c.id != keep)
    return conn.execute(query.values(ended_at=now or utcnow())).rowcount


def tidy_sessions(conn: sa.Connection, now: datetime) -> int:
    """Forget sessions over KEEP_ENDED past their expiry (a periodic task of the worker);
    how many."""
    return conn.execute(sa.delete(buyer_sessions).where(
        buyer_sessions.c.expires_at < now - KEEP_ENDED)).rowcount


def tidy_accounts(conn: sa.Connection, now: datetime) -> int:
    """The worker's hourly sweep of the accounts (``tidy_buyer_accounts``): sessions over
    KEEP_ENDED past their expiry, and codes (cloud/buyers/codes.py) a day past theirs; how
    many rows went."""
    return tidy_sessions(conn, now) + tidy_codes(conn, now)
