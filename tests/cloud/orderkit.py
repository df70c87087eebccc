"""A hub with a venue, a session on sale and its seats, for the order tests (both databases)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.tables import seats
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.db import init_db, make_engine
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.sales.tables import orders

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
START = NOW + timedelta(days=10)
# zone A: row 1 of 6 seats (category vip), row 2 of 6 (std); zone B: row 1 of 4 (std)
SEATS = ("level,zone,row,number,category\n"
         + "".join(f"L1,A,1,{n},vip\n" for n in range(1, 7))
         + "".join(f"L1,A,2,{n},std\n" for n in range(1, 7))
         + "".join(f"L2,B,1,{n},std\n" for n in range(1, 5)))


@dataclass
class OrderHub:
    engine: sa.Engine
    venue: int
    event: int
    session: int
    zones: dict[str, int]
    vip: int
    std: int

    def seat(self, zone: str, row: str, number: int) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(seats.c.id).where(
                seats.c.zone_id == self.zones[zone], seats.c.row == row,
                seats.c.number == str(number))).scalar_one()


def build(url: str) -> OrderHub:
    init_db(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        zones = {code: add_zone(conn, venue, code, f"Zone {code}") for code in ("A", "B")}
        assert import_seats_csv(conn, venue, SEATS).ok
        event = create_event(conn, "GAMES", "The Games")
        session = create_session(conn, event, venue, "Final", START,
                                 START + timedelta(hours=3))
        vip = add_price_tier(conn, session, "VIP", "VIP", 88000, seat_category="vip")
        std = add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
    return OrderHub(engine, venue, event, session, zones, vip, std)


def bare_order(conn: sa.Connection) -> int:
    """An order row for holds to name (the rules under test need nothing else of it)."""
    n = conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one()
    return conn.execute(sa.insert(orders).values(
        number=f"TEST{n:06d}", session_id=None, actor="test", state="pending_payment",
        total=0, currency="CNY", expires_at=NOW + timedelta(minutes=15),
        created_at=NOW)).inserted_primary_key[0]
