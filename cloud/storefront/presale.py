"""A presale on the public site, as rules: what anyone may see of it (its lots, window and
rules; the frozen list's hash and file, the seed and the result once there are), the holders
an application names, and the seats a winner may pick (cloud/lottery/ decides everything;
this only reads it for the pages).

A presale is public once staff opened it; a draft is not found, as an id that never existed.
Nothing personal is public: the results are application numbers, the seed's entry is told as
"two people, at this time", never who.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.catalog.tables import events, seats, sessions, venues, zones
from cloud.inventory.tables import session_seats
from cloud.lottery import choosing
from cloud.lottery.presales import Lot, lots
from cloud.lottery.tables import presales
from cloud.storefront import checkout

PUBLIC_STATES = ("open", "frozen", "drawn", "assigned")


@dataclass(frozen=True)
class PublicPresale:
    """A presale as its public page shows it."""

    id: int
    name: str
    event_name: str
    state: str
    window: str  # soon, open, closed
    opens_at: datetime
    closes_at: datetime
    choose_closes_at: datetime | None
    real_name: bool
    max_quantity: int
    buyer_limit: int | None
    on_site: bool  # offered on the public site
    timezone: str | None
    frozen_at: datetime | None
    list_sha256: str | None
    seed: str | None
    seed_fixed_at: datetime | None
    drawn_at: datetime | None
    result_source: str | None
    result_sha256: str | None
    lots: tuple[Lot, ...]

    @property
    def taking(self) -> bool:
        """Applications are taken now, on this site."""
        return self.state == "open" and self.window == "open" and self.on_site


def window_state(opens_at: datetime, closes_at: datetime, now: datetime) -> str:
    if now < opens_at:
        return "soon"
    return "open" if now < closes_at else "closed"


def public_presale(conn: sa.Connection, presale_id: int,
                   now: datetime) -> PublicPresale | None:
    """The presale anyone may see, or None (a draft, or no such presale)."""
    p = conn.execute(sa.select(presales, events.c.name.label("event_name"))
                     .join(events, events.c.id == presales.c.event_id)
                     .where(presales.c.id == presale_id,
                            presales.c.state.in_(PUBLIC_STATES))).first()
    if p is None:
        return None
    offered = lots(conn, presale_id)
    tz = conn.execute(sa.select(venues.c.timezone).join(
        sessions, sessions.c.venue_id == venues.c.id).where(
        sessions.c.id == offered[0].session_id)).scalar() if offered else None
    return PublicPresale(
        p.id, p.name, p.event_name, p.state, window_state(p.opens_at, p.closes_at, now),
        p.opens_at, p.closes_at, p.choose_closes_at, bool(p.real_name), p.max_quantity,
        p.buyer_limit, "storefront" in (p.channels or ()), tz, p.frozen_at, p.list_sha256,
        p.seed, p.seed_fixed_at, p.drawn_at, p.result_source, p.result_sha256,
        tuple(offered))


def event_presales(conn: sa.Connection, event_id: int, now: datetime) -> list[dict[str, Any]]:
    """An event's public presales, newest first: id, name, state and window."""
    return [{"id": r.id, "name": r.name, "state": r.state,
             "window": window_state(r.opens_at, r.closes_at, now)}
            for r in conn.execute(sa.select(presales.c.id, presales.c.name, presales.c.state,
                                            presales.c.opens_at, presales.c.closes_at)
                                  .where(presales.c.event_id == event_id,
                                         presales.c.state.in_(PUBLIC_STATES))
                                  .order_by(presales.c.id.desc()))]


def published_file(conn: sa.Connection, presale_id: int, which: str) -> bytes | None:
    """The canonical list (``list``, once frozen) or the result (``result``, once drawn) of a
    public presale, as published; None before."""
    column = {"list": presales.c.list_file, "result": presales.c.result_file}[which]
    return conn.execute(sa.select(column).where(
        presales.c.id == presale_id, presales.c.state.in_(PUBLIC_STATES))).scalar()


def application_holders(conn: sa.Connection, buyer_id: int, keys: list[str],
                        real_name: bool) -> list[tuple[str, tuple[str, str, str]]]:
    """The holders an application names, one per chosen key ("me" or "c<id>") in ticket
    order: each resolved to their verified document (else the buyers area's refusal), none
    twice; a ticket left unnamed (not real-name only) names nobody."""
    named: set[str] = set()
    found = []
    for i, key in enumerate(keys):
        if not key:
            if real_name:
                raise checkout.CheckoutError("unknown_holder", line=i + 1,
                                             field=f"holder_{i}")
            continue
        if key in named:
            raise checkout.CheckoutError("holder_twice", line=i + 1, field=f"holder_{i}")
        named.add(key)
        found.append((key, checkout.holder_for(conn, buyer_id, key, i)))
    return found


def choice_zones(conn: sa.Connection, presale_id: int, lot: Lot,
                 now: datetime) -> list[dict[str, Any]]:
    """The zones holding seats a winner of ``lot`` may take (the free seats of its tier, the
    presale's kept ones among them), each with every seat of the zone in row and position
    order: ``free`` when the winner may pick it, else ``taken``."""
    free = choosing.free_tier_seats(conn, presale_id, lot, now)
    ids = {f.seat_id for f in free}
    zone_ids = sorted({f.zone_id for f in free})
    if not zone_ids:
        return []
    names = dict(conn.execute(sa.select(zones.c.id, zones.c.name)
                              .where(zones.c.id.in_(zone_ids))).all())
    ss = session_seats.c
    rows = conn.execute(sa.select(ss.seat_id, ss.zone_id, seats.c.level, seats.c.row,
                                  seats.c.number, seats.c.category, ss.position)
                        .join(seats, seats.c.id == ss.seat_id)
                        .where(ss.session_id == lot.session_id, ss.zone_id.in_(zone_ids))
                        .order_by(ss.zone_id, ss.row_key, ss.position)).all()
    out: dict[int, dict[str, Any]] = {}
    for r in rows:
        zone = out.setdefault(r.zone_id, {"zone_id": r.zone_id, "name": names[r.zone_id],
                                          "seat_map": []})
        zone["seat_map"].append({"seat_id": r.seat_id, "level": r.level, "row": r.row,
                                 "number": r.number, "category": r.category,
                                 "zone": names[r.zone_id],
                                 "position": r.position,
                                 "status": "free" if r.seat_id in ids else "taken"})
    return list(out.values())


def verify_command(p: PublicPresale) -> str:
    """The command line that redraws the presale from its two published files and says
    whether the result is the one published (tools/verify_draw.py, standard library only)."""
    return (f"python3 tools/verify_draw.py applications.txt {shlex.quote(p.seed or '')} "
            f"--list-sha256 {p.list_sha256} --result results.txt")
