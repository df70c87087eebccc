"""Concurrent buyers, each on its own connection, on both databases: many buyers for few seats
sell exactly those seats, and quotas, per-holder limits and the one-document index hold under
the same race; holds that lapse give their seats and quota back to the next buyers. Times are
explicit: nothing waits for a clock."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier
from cloud.core.errors import HubError
from cloud.inventory.quotas import add_quota
from cloud.inventory.sessions import edit_session
from cloud.inventory.tables import quotas, session_seats
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import capture, create_order
from cloud.sales.tables import order_lines, orders, tickets
from sync.sample import resident_id
from tests.cloud.orderkit import NOW, build

BUYERS = 16


@pytest.fixture
def hub(hub_url, key_store):
    h = build(hub_url)
    yield h
    h.engine.dispose()


def race(hub, make_lines, now=NOW, pay=False, buyers=BUYERS) -> Counter:
    """``buyers`` threads start together, each creating (and with ``pay`` paying) one order on
    its own connection; the outcome of each: 'ok', the refusal's code, or any other error as
    ``unexpected:<type>: <message>``."""
    results: list[str] = []
    barrier = threading.Barrier(buyers)

    def buy(i: int) -> None:
        barrier.wait()
        try:
            with hub.engine.begin() as conn:
                made = create_order(conn, OrderRequest(hub.session, make_lines(i),
                                                       buyer=f"buyer-{i}"), now)
                if pay:
                    capture(conn, made.order_id, made.total, "wechat", f"tx-{i}", now)
            results.append("ok")
        except HubError as e:
            results.append(e.code)
        except Exception as e:  # noqa: BLE001 - an outcome, so the comparison shows it
            results.append(f"unexpected:{type(e).__name__}: {e}")

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(buyers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(results)


def count(hub, query) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def test_many_buyers_for_few_chosen_seats_hold_each_seat_once(hub):
    seats = [hub.seat("B", "1", n) for n in range(1, 5)]
    with hub.engine.begin() as conn:
        zone_quota = add_quota(conn, "zone", 4, session_id=hub.session, zone_id=hub.zones["B"])
    outcome = race(hub, lambda i: (LineRequest(seat_id=seats[i % 4]),))
    assert outcome == {"ok": 4, "seat_taken": BUYERS - 4}
    assert count(hub, sa.select(quotas.c.used).where(quotas.c.id == zone_quota)) == 4
    assert count(hub, sa.select(sa.func.count()).select_from(session_seats).where(
        session_seats.c.status == "held")) == 4


def test_many_paying_buyers_for_best_available_seats_sell_exactly_those(hub):
    best = LineRequest(zone_id=hub.zones["B"], price_tier_id=hub.std)
    outcome = race(hub, lambda i: (best,), pay=True)
    assert outcome == {"ok": 4, "sold_out": BUYERS - 4}
    assert count(hub, sa.select(sa.func.count()).select_from(tickets)) == 4
    assert count(hub, sa.select(sa.func.count(sa.distinct(tickets.c.seat_id)))) == 4
    assert count(hub, sa.select(sa.func.count()).select_from(session_seats).where(
        session_seats.c.status == "sold")) == 4


def test_pairs_of_adjacent_seats_under_a_race_are_never_split_or_shared(hub):
    pair = LineRequest(zone_id=hub.zones["A"], price_tier_id=hub.std)
    outcome = race(hub, lambda i: (pair, pair), buyers=8)
    assert outcome["ok"] == 3 and set(outcome) <= {"ok", "sold_out", "no_adjacent_seats"}
    with hub.engine.connect() as conn:
        held = conn.execute(sa.select(session_seats.c.order_id, session_seats.c.position)
                            .where(session_seats.c.status == "held")).all()
    by_order: dict[int, list[int]] = {}
    for order_id, position in held:
        by_order.setdefault(order_id, []).append(position)
    assert len(by_order) == 3
    assert all(max(p) - min(p) == 1 and len(p) == 2 for p in by_order.values())


def test_a_general_admission_quota_holds_under_a_race(hub):
    with hub.engine.begin() as conn:
        tier = add_price_tier(conn, hub.session, "GA", "Standing", 10000)
        ga = add_quota(conn, "ga", 5, session_id=hub.session)
    outcome = race(hub, lambda i: (LineRequest(kind="ga", price_tier_id=tier),), pay=True)
    assert outcome == {"ok": 5, "sold_out": BUYERS - 5}
    assert count(hub, sa.select(quotas.c.used).where(quotas.c.id == ga)) == 5
    assert count(hub, sa.select(sa.func.count()).select_from(tickets)) == 5


def test_a_per_holder_limit_holds_under_a_race(hub):
    with hub.engine.begin() as conn:
        tier = add_price_tier(conn, hub.session, "GA", "Standing", 10000)
        add_quota(conn, "ga", 100, session_id=hub.session)
        edit_session(conn, hub.session, holder_limit=2)
    holder = ("张小三", "resident_id", resident_id("11010119900307123"))
    outcome = race(hub, lambda i: (LineRequest(kind="ga", price_tier_id=tier,
                                               holder=holder),))
    assert outcome == {"ok": 2, "limit_reached": BUYERS - 2}


def test_one_document_per_real_name_session_holds_under_a_race(hub):
    with hub.engine.begin() as conn:
        edit_session(conn, hub.session, real_name=True)
    holder = ("张小三", "resident_id", resident_id("11010119900307123"))
    seats = [hub.seat("A", "2", n) for n in range(1, 7)]
    outcome = race(hub, lambda i: (LineRequest(seat_id=seats[i], holder=holder),), buyers=6)
    assert outcome == {"ok": 1, "document_already_used": 5}
    assert count(hub, sa.select(sa.func.count()).select_from(order_lines)) == 1


def test_lapsed_holds_return_their_seats_and_quota_to_the_next_race(hub):
    seats = [hub.seat("B", "1", n) for n in range(1, 5)]
    with hub.engine.begin() as conn:
        zone_quota = add_quota(conn, "zone", 4, session_id=hub.session, zone_id=hub.zones["B"])
    first = race(hub, lambda i: (LineRequest(seat_id=seats[i % 4]),), buyers=8)
    assert first == {"ok": 4, "seat_taken": 4}
    later = NOW + timedelta(minutes=16)
    second = race(hub, lambda i: (LineRequest(seat_id=seats[i % 4]),), now=later, pay=True)
    # the losers find the seats sold (or, while a winner is still paying, held)
    assert second["ok"] == 4 and set(second) <= {"ok", "seat_taken", "seat_not_for_sale"}
    assert count(hub, sa.select(quotas.c.used).where(quotas.c.id == zone_quota)) == 4
    assert count(hub, sa.select(sa.func.count()).select_from(orders).where(
        orders.c.state == "expired")) == 4
    assert count(hub, sa.select(sa.func.count()).select_from(tickets)) == 4
