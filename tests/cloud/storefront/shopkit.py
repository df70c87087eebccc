"""A hub with sessions for the public site's tests: one on sale in a month (two zones, two
price tiers, one seat sold), one whose sale opens in a week, one not on sale, one postponed (on sale at its new time); the app
with its page cache and availability cache as ``wicket-hub serve`` has them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask

from cloud.app import create_app
from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.tables import seats
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.db import init_db
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session, edit_session, postpone_session
from cloud.inventory.tables import session_seats
from sync.timeutil import utcnow

SECRET = "s" * 48
# zone A: row 1 of 6 seats (vip), row 2 of 6 (std); zone B: row 1 of 4 (std)
SEATS = ("level,zone,row,number,category\n"
         + "".join(f"L1,A,1,{n},vip\n" for n in range(1, 7))
         + "".join(f"L1,A,2,{n},std\n" for n in range(1, 7))
         + "".join(f"L2,B,1,{n},std\n" for n in range(1, 5)))


@dataclass
class Shop:
    app: Flask
    engine: sa.Engine
    venue: int
    event: int
    final: int  # on sale now
    heats: int  # on sale, its window opens in a week
    hidden: int  # not on sale
    postponed: int
    zones: dict[str, int]
    vip: int
    std: int


def _session(conn, event, venue, name, start):
    return create_session(conn, event, venue, name, start, start + timedelta(hours=3))


def build_shop(url: str, **config) -> Shop:
    init_db(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True, "SECRET_KEY": SECRET, **config})
    return seed_shop(app)


def seed_shop(app: Flask) -> Shop:
    """The sessions, seats and prices of the shop, in the app's database."""
    engine = app.extensions["db"]
    start = (utcnow() + timedelta(days=30)).replace(hour=11, minute=30, second=0,
                                                     microsecond=0)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre", "1 Olympic Avenue",
                             "Asia/Shanghai")
        zones = {code: add_zone(conn, venue, code, name) for code, name in
                 (("A", "North Stand"), ("B", "South Stand"))}
        assert import_seats_csv(conn, venue, SEATS).ok
        event = create_event(conn, "GAMES", "The Games", discipline="athletics")
        other = create_event(conn, "SWIM", "Swimming Gala", discipline="swimming")
        final = _session(conn, event, venue, "100% Final", start)
        heats = _session(conn, other, venue, "Heats", start + timedelta(days=1))
        hidden = _session(conn, event, venue, "Rehearsal", start + timedelta(days=2))
        postponed = _session(conn, other, venue, "Relay", start + timedelta(days=3))
        tiers = {}
        for s in (final, heats, hidden, postponed):
            tiers[s] = (add_price_tier(conn, s, "VIP", "VIP", 88000, seat_category="vip"),
                        add_price_tier(conn, s, "STD", "Standard", 38000,
                                       seat_category="std"))
            inventory.confirm_configuration(conn, s)
            if s != hidden:
                inventory.put_on_sale(conn, s)
        edit_session(conn, heats, sale_opens_at=utcnow() + timedelta(days=7))
        postpone_session(conn, postponed, start + timedelta(days=9),
                         start + timedelta(days=9, hours=3))
        conn.execute(sa.update(session_seats)
                     .where(session_seats.c.session_id == final,
                            session_seats.c.seat_id == sa.select(seats.c.id).where(
                                seats.c.zone_id == zones["A"], seats.c.row == "2",
                                seats.c.number == "1").scalar_subquery())
                     .values(status="sold"))
    return Shop(app, engine, venue, event, final, heats, hidden, postponed, zones,
                *tiers[final])
