"""What the public may see of the catalogue: the sessions on sale (the staff's flag, a
scheduled session not yet over), their events and venues, price tiers and sale windows, found
by name, venue, day and discipline; and how much is left, in words a buyer reads at a glance.

A session is *public* while staff have put it on sale, it is not cancelled (a postponed
session goes on selling at its new time, and says so) and it has not ended. Its sale window (the session's, narrowed by a tier's own)
says whether a buyer may buy now: not yet (with the moment it opens), now, or no longer.
Nothing here reads seat rows: how much is left comes from the availability cache
(:mod:`cloud.inventory.availability`), whose answers are never older than a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from cloud.catalog.tables import events, price_tiers, sessions, venues
from sync.timeutil import utcnow

MAX_QUERY = 100  # characters of a search
MAX_RESULTS = 60
FEW_SHARE = 0.1  # "few left" at or under this share of the sellable seats
FEW_AT_LEAST = 10  # … or this many seats, whichever is more


@dataclass(frozen=True)
class Window:
    """When buying is open: ``state`` is ``soon`` (opens at ``opens_at``), ``open`` or
    ``closed``."""

    state: str
    opens_at: datetime | None
    closes_at: datetime | None


@dataclass(frozen=True)
class Card:
    """A public session as lists show it."""

    session_id: int
    name: str
    event_id: int
    event_name: str
    discipline: str | None
    venue_id: int
    venue_name: str
    timezone: str
    starts_at: datetime
    ends_at: datetime
    real_name: bool
    window: Window
    from_amount: int | None
    currency: str
    postponed: bool = False


@dataclass(frozen=True)
class Tier:
    id: int
    code: str
    name: str
    amount: int
    currency: str
    seat_category: str | None
    window: Window


def window(opens: datetime | None, closes: datetime | None, now: datetime) -> Window:
    if opens is not None and now < opens:
        return Window("soon", opens, closes)
    if closes is not None and now >= closes:
        return Window("closed", opens, closes)
    return Window("open", opens, closes)


def narrowed(session_window: Window, opens: datetime | None, closes: datetime | None,
             now: datetime) -> Window:
    """A tier's window inside its session's: the later opening, the earlier closing."""
    starts = [t for t in (session_window.opens_at, opens) if t is not None]
    ends = [t for t in (session_window.closes_at, closes) if t is not None]
    return window(max(starts) if starts else None, min(ends) if ends else None, now)


def level(free: int, sellable: int) -> str:
    """How much is left, as a buyer reads it: ``plenty``, ``few`` or ``sold_out``."""
    if free <= 0:
        return "sold_out"
    if free <= max(FEW_AT_LEAST, sellable * FEW_SHARE):
        return "few"
    return "plenty"


def _public(now: datetime) -> sa.ColumnElement[bool]:
    s = sessions.c
    return sa.and_(s.on_sale.is_(True), s.state.in_(("scheduled", "postponed")),
                   s.ends_at > now)


def _cheapest() -> sa.ScalarSelect:
    return (sa.select(sa.func.min(price_tiers.c.amount))
            .where(price_tiers.c.session_id == sessions.c.id).scalar_subquery())


def _cards(conn: sa.Connection, where: list, now: datetime, limit: int) -> list[Card]:
    s, e, v = sessions.c, events.c, venues.c
    currency = (sa.select(sa.func.min(price_tiers.c.currency))
                .where(price_tiers.c.session_id == s.id).scalar_subquery())
    rows = conn.execute(
        sa.select(s.id, s.name, s.event_id, e.name.label("event_name"), e.discipline,
                  s.venue_id, v.name.label("venue_name"), v.timezone, s.starts_at, s.ends_at,
                  s.real_name, s.sale_opens_at, s.sale_closes_at, s.state,
                  _cheapest().label("from_amount"), currency.label("currency"))
        .join(events, e.id == s.event_id).join(venues, v.id == s.venue_id)
        .where(_public(now), *where).order_by(s.starts_at, s.id).limit(limit)).all()
    return [Card(r.id, r.name, r.event_id, r.event_name, r.discipline, r.venue_id,
                 r.venue_name, r.timezone, r.starts_at, r.ends_at, bool(r.real_name),
                 window(r.sale_opens_at, r.sale_closes_at, now), r.from_amount,
                 r.currency or "CNY", r.state == "postponed") for r in rows]


def upcoming(conn: sa.Connection, *, now: datetime | None = None,
             limit: int = 12) -> list[Card]:
    """The public sessions, soonest first."""
    return _cards(conn, [], now or utcnow(), limit)


@dataclass(frozen=True)
class Search:
    """What a buyer searched for; every part optional."""

    text: str = ""
    venue_id: int | None = None
    day: date | None = None
    discipline: str = ""

    def empty(self) -> bool:
        return not (self.text or self.venue_id or self.day or self.discipline)


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search(conn: sa.Connection, asked: Search, *, now: datetime | None = None,
           limit: int = MAX_RESULTS) -> list[Card]:
    """The public sessions matching every part asked: the text in the session's or event's
    name or the venue's (case-insensitive, taken literally), at that venue, starting on that
    day (in the venue's own time zone), of that discipline."""
    now = now or utcnow()
    where: list = []
    text = asked.text.strip()[:MAX_QUERY]
    if text:
        like = f"%{_escaped(text.lower())}%"
        where.append(sa.or_(*(sa.func.lower(c).like(like, escape="\\") for c in
                              (sessions.c.name, events.c.name, venues.c.name))))
    if asked.venue_id is not None:
        where.append(sessions.c.venue_id == asked.venue_id)
    if asked.discipline:
        where.append(events.c.discipline == asked.discipline)
    if asked.day is None:
        return _cards(conn, where, now, limit)
    # the day is the venue's: a wide net in UTC, then each session's own local date
    start = datetime.combine(asked.day, time.min, tzinfo=ZoneInfo("UTC"))
    where += [sessions.c.starts_at >= start - timedelta(hours=15),
              sessions.c.starts_at < start + timedelta(hours=39)]
    return [c for c in _cards(conn, where, now, 1000)
            if c.starts_at.astimezone(ZoneInfo(c.timezone)).date() == asked.day][:limit]


def choices(conn: sa.Connection, *, now: datetime | None = None) -> dict[str, Any]:
    """What the search form offers: the venues and disciplines of public sessions."""
    now = now or utcnow()
    public = sa.select(sessions.c.venue_id, sessions.c.event_id).where(_public(now)).subquery()
    venue_rows = conn.execute(sa.select(venues.c.id, venues.c.name).where(
        venues.c.id.in_(sa.select(public.c.venue_id))).order_by(venues.c.name)).all()
    disciplines = conn.execute(sa.select(events.c.discipline).distinct().where(
        events.c.id.in_(sa.select(public.c.event_id)), events.c.discipline.is_not(None))
        .order_by(events.c.discipline)).scalars().all()
    return {"venues": [(r.id, r.name) for r in venue_rows], "disciplines": list(disciplines)}


def event_sessions(conn: sa.Connection, event_id: int, *,
                   now: datetime | None = None) -> list[Card]:
    """An event's public sessions; none when the event has none (or does not exist)."""
    return _cards(conn, [sessions.c.event_id == event_id], now or utcnow(), MAX_RESULTS)


def session_card(conn: sa.Connection, session_id: int, *,
                 now: datetime | None = None) -> Card | None:
    """One public session, or None when there is none such the public may see."""
    found = _cards(conn, [sessions.c.id == session_id], now or utcnow(), 1)
    return found[0] if found else None


def tiers(conn: sa.Connection, card: Card, *, now: datetime | None = None) -> list[Tier]:
    """The session's price tiers, cheapest first, each with its own window."""
    now = now or utcnow()
    t = price_tiers.c
    rows = conn.execute(sa.select(price_tiers).where(t.session_id == card.session_id)
                        .order_by(t.amount, t.id)).all()
    return [Tier(r.id, r.code, r.name, r.amount, r.currency, r.seat_category,
                 narrowed(card.window, r.sale_opens_at, r.sale_closes_at, now)) for r in rows]
