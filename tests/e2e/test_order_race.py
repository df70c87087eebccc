"""Buyers racing for the same seats over HTTP, against ``wicket-hub serve --workers 2`` as a real
process on SQLite and PostgreSQL: every buyer's thread has its own connection and all are
let go together by a barrier; the hub must sell each seat once, hold nothing for a refused
buyer, and tell every one it refused why (409 with a stable code).

Each buyer comes from an address of its own (``X-Forwarded-For``, the hub believing one
proxy through ``WICKET_HUB_TRUSTED_PROXIES``), as buyers do behind the hub's reverse proxy, so
the staff API's rate limit, counted per address, is no part of the race.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.db import init_db, make_engine
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.quotas import add_quota
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.inventory.tables import quotas, session_seats
from cloud.sales.tables import order_lines, orders, tickets
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from sync.timeutil import utcnow
from tests.cloud.conftest import hub_url  # noqa: F401
from tests.e2e import conftest as e2e
from tests.e2e.conftest import HubProcess

REFUSALS = {"seat_taken", "sold_out", "no_adjacent_seats", "seat_not_for_sale"}
TIMEOUT = 120  # seconds a buyer waits for one answer: generous, the race is not about speed


class Shop:
    """A session on sale with a zone of seats (five rows of ten), one price tier, a quota on
    the zone, a clerk's API token, and the hub serving it as a process."""

    def __init__(self, url: str, seats: int, quota: int):
        init_db(url)
        self.engine = make_engine(url)
        start = utcnow() + timedelta(days=10)
        rows = "".join(f"L1,A,{1 + n // 10},{1 + n % 10},std\n" for n in range(seats))
        with self.engine.begin() as conn:
            activate_key(conn, create_key(conn))
            venue = create_venue(conn, "RACE", "Race Arena")
            self.zone = add_zone(conn, venue, "A", "Zone A")
            assert import_seats_csv(conn, venue, "level,zone,row,number,category\n" + rows).ok
            event = create_event(conn, "CUP", "The Cup")
            self.session = create_session(conn, event, venue, "Final", start,
                                          start + timedelta(hours=3))
            self.tier = add_price_tier(conn, self.session, "STD", "Standard", 38000,
                                       seat_category="std")
            inventory.confirm_configuration(conn, self.session)
            inventory.put_on_sale(conn, self.session)
            self.quota = add_quota(conn, "zone", quota, session_id=self.session,
                                   zone_id=self.zone)
            clerk = create_staff(conn, "clerk", "Harbour-lamp-2026", "sales", actor="test")
            self.token = create_token(conn, clerk, "till", "test")[1]
            self.seat_ids = sorted(conn.execute(sa.select(session_seats.c.seat_id).where(
                session_seats.c.session_id == self.session)).scalars())
        assert len(self.seat_ids) == seats
        self.hub = HubProcess(url)

    def buy(self, buyer: int, line: dict, barrier: threading.Barrier) -> tuple[int, dict]:
        """One buyer: wait for the others, ask for the line, and pay at once if held.
        (status of the order, its answer), with the payment's answer under ``paid``."""
        with requests.Session() as http:
            http.headers.update({"Authorization": f"Bearer {self.token}",
                                 "X-Forwarded-For": f"10.{buyer // 250}.{buyer % 250}.1"})
            barrier.wait()
            r = http.post(f"{self.hub.url}/api/v1/sessions/{self.session}/orders",
                          json={"lines": [line]}, timeout=TIMEOUT,
                          headers={"Idempotency-Key": f"race-{uuid.uuid4()}"})
            body = r.json()
            if r.status_code == 201:
                paid = http.post(f"{self.hub.url}/api/v1/orders/{body['number']}/payments",
                                 json={"provider": "offline"}, timeout=TIMEOUT,
                                 headers={"Idempotency-Key": f"pay-{uuid.uuid4()}"})
                body["paid"] = (paid.status_code, paid.json())
            return r.status_code, body

    def race(self, lines: list[dict]) -> list[tuple[int, dict]]:
        """Every buyer at once: one thread each, all released by one barrier."""
        barrier = threading.Barrier(len(lines))
        with ThreadPoolExecutor(max_workers=len(lines)) as pool:
            futures = [pool.submit(self.buy, i, line, barrier) for i, line in enumerate(lines)]
            return [f.result() for f in futures]

    def count(self, query) -> int:
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()


@pytest.fixture
def shop(hub_url, request, monkeypatch):  # noqa: F811
    seats, quota = request.param
    monkeypatch.setitem(e2e.ENV, "WICKET_HUB_TRUSTED_PROXIES", "1")
    made = Shop(hub_url, seats, quota)
    made.hub.start()
    yield made
    made.hub.stop()
    made.engine.dispose()


def _check_outcome(shop: Shop, results: list[tuple[int, dict]], sold: int) -> list[dict]:
    """Exactly ``sold`` buyers held and paid, every other told 409 why; the orders sold."""
    held = [body for status, body in results if status == 201]
    refused = [body for status, body in results if status != 201]
    assert len(held) == sold, [b for s, b in results if s not in (201, 409)][:5]
    assert all(status in (201, 409) for status, _ in results), \
        {status for status, _ in results}
    assert {body["error"] for body in refused} <= REFUSALS, {b["error"] for b in refused}
    for body in held:
        status, paid = body["paid"]
        assert status == 200 and paid["order_state"] == "paid", paid
        assert len(paid["tickets"]) == 1 and not paid["refund_needed"]
    with requests.Session() as http:  # and the hub says so when asked again
        http.headers["Authorization"] = f"Bearer {shop.token}"
        http.headers["X-Forwarded-For"] = "10.255.0.1"
        for body in held:
            read = http.get(f"{shop.hub.url}/api/v1/orders/{body['number']}", timeout=TIMEOUT)
            assert read.status_code == 200 and read.json()["state"] == "paid"
            assert len(read.json()["tickets"]) == 1
    return held


def _check_database(shop: Shop, sold: int) -> None:
    """``sold`` live tickets, one per seat; every order paid; no order holds a seat it did not
    pay for; the zone's quota counts what was sold."""
    live = tickets.c.state == "issued"
    assert shop.count(sa.select(sa.func.count()).select_from(tickets).where(live)) == sold
    assert shop.count(sa.select(sa.func.count(sa.distinct(tickets.c.seat_id)))
                      .where(live, tickets.c.seat_id.is_not(None))) == sold
    twice = sa.select(tickets.c.seat_id).where(live).group_by(tickets.c.seat_id) \
        .having(sa.func.count() > 1).subquery()
    assert shop.count(sa.select(sa.func.count()).select_from(twice)) == 0
    assert shop.count(sa.select(sa.func.count()).select_from(orders)) == sold
    assert shop.count(sa.select(sa.func.count()).select_from(orders)
                      .where(orders.c.state == "paid")) == sold
    unpaid_hold = sa.select(sa.func.count()).select_from(
        session_seats.join(orders, orders.c.id == session_seats.c.order_id)).where(
        orders.c.state != "paid")
    assert shop.count(unpaid_hold) == 0
    assert shop.count(sa.select(sa.func.count()).select_from(session_seats).where(
        session_seats.c.session_id == shop.session, session_seats.c.status == "held")) == 0
    assert shop.count(sa.select(sa.func.count()).select_from(session_seats).where(
        session_seats.c.session_id == shop.session, session_seats.c.status == "sold")) == sold
    # each sold seat is the seat of its order's one line and of that order's one ticket
    agree = sa.select(sa.func.count()).select_from(
        session_seats.join(order_lines, order_lines.c.order_id == session_seats.c.order_id)
        .join(tickets, tickets.c.order_id == session_seats.c.order_id)).where(
        session_seats.c.status == "sold", order_lines.c.seat_id == session_seats.c.seat_id,
        tickets.c.seat_id == session_seats.c.seat_id, order_lines.c.state == "issued", live)
    assert shop.count(agree) == sold
    assert shop.count(sa.select(quotas.c.used).where(quotas.c.id == shop.quota)) == sold


@pytest.mark.parametrize("shop", [(50, 50)], indirect=True)
def test_two_hundred_buyers_for_fifty_seats_buy_each_seat_once(shop):
    line = {"zone_id": shop.zone, "price_tier_id": shop.tier}
    results = shop.race([line] * 200)
    held = _check_outcome(shop, results, 50)
    seats = [body["lines"][0]["seat_id"] for body in held]
    assert sorted(seats) == shop.seat_ids  # every seat sold, none twice
    _check_database(shop, 50)


@pytest.mark.parametrize("shop", [(10, 10)], indirect=True)
def test_a_hundred_buyers_for_the_same_ten_chosen_seats(shop):
    lines = [{"seat_id": shop.seat_ids[i % 10], "price_tier_id": shop.tier}
             for i in range(100)]  # ten buyers for each seat
    results = shop.race(lines)
    held = _check_outcome(shop, results, 10)
    for status, body in results:
        if status == 409:
            # held by another: seat_taken; already paid for: seat_not_for_sale
            assert body["error"] in ("seat_taken", "seat_not_for_sale", "sold_out"), body
    assert sorted(body["lines"][0]["seat_id"] for body in held) == shop.seat_ids
    _check_database(shop, 10)
