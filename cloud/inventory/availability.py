"""What is left to sell in a session: seats free, held, sold, kept (reserved for a named
customer) and closed (not sellable), per zone and per price tier, and each seat's status in a
zone — read in one statement each, and kept ready for the many who ask.

Lazy expiry applies here as everywhere: a hold past its deadline is free at once, and a
reservation past its end too. A seat is *free* when anyone could hold it now.

The cache (:class:`AvailabilityCache`, one per app process). A seat map is asked for far
more often than it changes, and an answer read a moment ago is as good as a new one for a
buyer whose hold is decided by its own conditional UPDATE anyway. So an answer is kept and
served without touching the database while it is fresh:

* never longer than ``max_age`` seconds after its counts were read (the staleness bound: a
  sale, hold, cancellation or refund made anywhere is in every answer read ``max_age``
  after it committed);
* never past the first moment a hold or a reservation it counted ends (that changes the
  answer with no write at all), so time alone never makes an answer wrong.

There is no version row bumped by each sale: it would be one more hot row every hold of the
session queues on, and every writer of a session's seats (holds, sales, refunds, category
changes, reservations) would have to remember it. Each answer carries an ETag (a digest of
its body): a client that sends it back gets ``304`` while nothing changed, even across a
re-read (a weak one: ``as_of`` differs). One process re-reads a stale answer once; the requests arriving meanwhile wait for
that read instead of all reading at once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cloud.catalog.tables import price_tiers, seats, sessions, zones
from cloud.inventory.seats import InventoryError
from cloud.inventory.tables import session_seats
from sync.timeutil import utcnow

STATES = ("free", "held", "sold", "kept", "closed")
MAX_AGE = 1.0  # seconds an answer may be served after its counts were read
MAX_ENTRIES = 512  # answers one process keeps (a session's summary and its zones' seat maps)


def _state(now: datetime) -> sa.ColumnElement[str]:
    """A seat's status now, as the storefront shows it."""
    ss = session_seats.c
    return sa.case(
        (ss.status == "sold", "sold"),
        (sa.and_(ss.status == "held", ss.held_until >= now), "held"),
        (ss.category != "sellable", "closed"),
        (sa.and_(ss.reserved_for.is_not(None), ss.reserved_until >= now), "kept"),
        else_="free")


def _next_change(conn: sa.Connection, session_id: int, now: datetime) -> datetime | None:
    """The first moment a hold or a reservation of the session ends after ``now``: the answer
    read now changes then without any write."""
    ss = session_seats.c
    held = sa.select(sa.func.min(ss.held_until)).where(
        ss.session_id == session_id, ss.status == "held", ss.held_until >= now)
    kept = sa.select(sa.func.min(ss.reserved_until)).where(
        ss.session_id == session_id, ss.status != "sold", ss.reserved_until >= now)
    row = conn.execute(sa.select(held.scalar_subquery().label("held"),
                                 kept.scalar_subquery().label("kept"))).one()
    found = [t for t in (row.held, row.kept) if t is not None]
    return min(found) if found else None


def _counts() -> dict[str, int]:
    return dict.fromkeys(STATES, 0)


def _tier_of(tiers: list, category: str) -> int | None:
    """The price tier a venue seat category sells at: the tier naming it, else the session's
    tier naming no category (as orders price seats)."""
    for t in tiers:
        if t.seat_category == category:
            return t.id
    return next((t.id for t in tiers if t.seat_category is None), None)


def summary(conn: sa.Connection, session_id: int, now: datetime | None = None
            ) -> dict[str, Any]:
    """The session's seats by status: in all, per zone and per price tier; with ``as_of`` (when
    read) and ``changes_at`` (when a hold or reservation counted here ends, if one does)."""
    now = now or utcnow()
    on_sale = _known(conn, session_id)
    ss = session_seats.c
    state = _state(now).label("state")
    rows = conn.execute(sa.select(ss.zone_id, seats.c.category, state, sa.func.count())
                        .join(seats, seats.c.id == ss.seat_id).where(ss.session_id == session_id)
                        .group_by(ss.zone_id, seats.c.category, state)).all()
    tiers = conn.execute(sa.select(price_tiers.c.id, price_tiers.c.code, price_tiers.c.name,
                                   price_tiers.c.amount, price_tiers.c.currency,
                                   price_tiers.c.seat_category)
                         .where(price_tiers.c.session_id == session_id)
                         .order_by(price_tiers.c.id)).all()
    names = {z.id: z for z in conn.execute(sa.select(zones.c.id, zones.c.code, zones.c.name)
                                           .where(zones.c.id.in_({r.zone_id for r in rows})))}
    total, by_zone, by_tier = _counts(), {}, {t.id: _counts() for t in tiers}
    for zone_id, category, st, n in rows:
        total[st] += n
        by_zone.setdefault(zone_id, _counts())[st] += n
        tier = _tier_of(tiers, category)
        if tier is not None and st != "closed":
            by_tier[tier][st] += n
    changes = _next_change(conn, session_id, now)
    return {
        "session_id": session_id, "on_sale": on_sale, "as_of": now.isoformat(),
        "changes_at": changes.isoformat() if changes else None, "seats": total,
        "zones": [{"zone_id": z, "code": names[z].code, "name": names[z].name, **c}
                  for z, c in sorted(by_zone.items()) if z in names],
        "price_tiers": [{"price_tier_id": t.id, "code": t.code, "name": t.name,
                         "amount": t.amount, "currency": t.currency, **by_tier[t.id]}
                        for t in tiers],
    }


def zone_seats(conn: sa.Connection, session_id: int, zone_id: int,
               now: datetime | None = None) -> dict[str, Any]:
    """Each seat of one zone of the session with its status (row by row, in position order),
    and the zone's counts; ``as_of`` and ``changes_at`` as in :func:`summary`."""
    now = now or utcnow()
    on_sale = _known(conn, session_id)
    ss = session_seats.c
    rows = conn.execute(sa.select(ss.seat_id, seats.c.level, seats.c.row, seats.c.number,
                                  seats.c.category, ss.position, _state(now).label("state"))
                        .join(seats, seats.c.id == ss.seat_id)
                        .where(ss.session_id == session_id, ss.zone_id == zone_id)
                        .order_by(ss.row_key, ss.position)).all()
    counts = _counts()
    for r in rows:
        counts[r.state] += 1
    changes = _next_change(conn, session_id, now)
    return {
        "session_id": session_id, "zone_id": zone_id, "on_sale": on_sale,
        "as_of": now.isoformat(),
        "changes_at": changes.isoformat() if changes else None, "seats": counts,
        "seat_map": [{"seat_id": r.seat_id, "level": r.level, "row": r.row,
                      "number": r.number, "category": r.category, "position": r.position,
                      "status": r.state} for r in rows],
    }


def _known(conn: sa.Connection, session_id: int) -> bool:
    """Whether the session is on sale now (its flag, and not cancelled: a postponed session
    goes on selling at its new time); ``unknown_session`` when there is no such session."""
    row = conn.execute(sa.select(sessions.c.on_sale, sessions.c.state)
                       .where(sessions.c.id == session_id)).first()
    if row is None:
        raise InventoryError("unknown_session", session_id=session_id)
    return bool(row.on_sale) and row.state in ("scheduled", "postponed")


@dataclass(frozen=True)
class Answer:
    """An answer ready to send: its JSON body, its ETag, until when it may be served, and
    whether its session was on sale when it was read (the public may see only those)."""

    body: bytes
    etag: str
    fresh_until: datetime
    on_sale: bool = False


def answer(body: dict[str, Any], now: datetime, max_age: float) -> Answer:
    """The body ready to send, with an ETag of what it says (all but ``as_of``: an answer read
    again and saying the same has the same tag), fresh until ``max_age`` after ``now`` or
    until ``changes_at``, whichever comes first."""
    data = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    said = json.dumps({**body, "as_of": None}, separators=(",", ":"), sort_keys=True)
    etag = hashlib.sha256(said.encode()).hexdigest()[:32]
    fresh = now + timedelta(seconds=max_age)
    if body["changes_at"] is not None:
        fresh = min(fresh, datetime.fromisoformat(body["changes_at"]))
    return Answer(data, etag, fresh, bool(body.get("on_sale")))


class AvailabilityCache:
    """Answers of one process, by (session, zone or None), fresh for ``max_age`` seconds at
    most and never past their ``changes_at`` (see the module's docstring). ``clock`` gives
    the time both for freshness and for lazy expiry (tests pass a fixed one)."""

    def __init__(self, engine: sa.Engine, max_age: float = MAX_AGE,
                 clock: Callable[[], datetime] = utcnow):
        self.engine, self.max_age, self.clock = engine, max_age, clock
        self._answers: dict[tuple[int, int | None], Answer] = {}
        self._reading: dict[tuple[int, int | None], threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, session_id: int, zone_id: int | None = None) -> Answer:
        key = (session_id, zone_id)
        found = self._answers.get(key)
        if found is not None and self.clock() < found.fresh_until:
            return found
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:  # one read per stale answer; the others wait for it
            found = self._answers.get(key)
            now = self.clock()
            if found is not None and now < found.fresh_until:
                return found
            with self.engine.connect() as conn:
                body = summary(conn, session_id, now) if zone_id is None \
                    else zone_seats(conn, session_id, zone_id, now)
            made = answer(body, now, self.max_age)
            with self._lock:
                if len(self._answers) >= MAX_ENTRIES:
                    self._answers.clear()
                    self._reading = {key: reading}
                self._answers[key] = made
            return made
