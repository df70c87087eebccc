"""Any sequence of orders, payments, cancellations, expiries and refunds at any times keeps the
books straight (hypothesis draws the sequences; both databases): every quota's ``used`` is the
number of live lines counted in it and within its capacity, every held seat names a pending
order, every sold seat has one live ticket, every purchase count is its live lines, and no
document has two live lines in the real-name session."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.catalog.events import add_price_tier
from cloud.core.errors import HubError
from cloud.inventory.quotas import add_quota
from cloud.inventory.sessions import edit_session
from cloud.inventory.tables import quotas, session_seats
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import cancel_order, capture, create_order, expire_lapsed_orders
from cloud.sales.tables import order_lines, orders, purchase_counts, tickets
from cloud.sales.tickets import revoke_ticket
from sync.sample import resident_id
from tests.cloud.orderkit import NOW, build

DOCS = [resident_id(f"110101199003071{n:02d}") for n in range(3)]


@pytest.fixture
def hub(hub_url, key_store):
    h = build(hub_url)
    with h.engine.begin() as conn:
        h.ga = add_price_tier(conn, h.session, "GA", "Standing", 10000)
        add_quota(conn, "ga", 4, session_id=h.session)
        add_quota(conn, "zone", 5, session_id=h.session, zone_id=h.zones["B"])
        add_quota(conn, "tier", 6, session_id=h.session, price_tier_id=h.std)
        edit_session(conn, h.session, real_name=True, buyer_limit=4)
    h.seats = [h.seat("B", "1", n) for n in range(1, 5)] + [h.seat("A", "2", 1)]
    yield h
    h.engine.dispose()


def _line(hub, draw):
    holder = ("持票人", "resident_id", draw(st.sampled_from(DOCS)))
    kind = draw(st.sampled_from(["seat", "best", "ga"]))
    if kind == "seat":
        return LineRequest(seat_id=draw(st.sampled_from(hub.seats)), holder=holder)
    if kind == "best":
        return LineRequest(zone_id=hub.zones["B"], price_tier_id=hub.std, holder=holder)
    return LineRequest(kind="ga", price_tier_id=hub.ga, holder=holder)


def _step(hub, draw, conn, made: list, now) -> None:
    action = draw(st.sampled_from(["order", "order", "pay", "cancel", "tidy", "refund"]))
    # which order or ticket the step picks: drawn every step with fixed bounds, so what is drawn
    # never depends on the database (Hypothesis replays a choice sequence and must see the same
    # draws; a list that changed between runs would be a flaky strategy)
    pick = draw(st.integers(0, 999))
    if action == "order":
        lines = tuple(_line(hub, draw) for _ in range(draw(st.integers(1, 2))))
        req = OrderRequest(hub.session, lines, buyer=draw(st.sampled_from(["u1", "u2"])))
        made.append(create_order(conn, req, now))
    elif action == "pay" and made:
        o = made[pick % len(made)]
        capture(conn, o.order_id, o.total, "wechat", f"tx-{o.order_id}-{len(made)}", now)
    elif action == "cancel" and made:
        cancel_order(conn, made[pick % len(made)].order_id, now=now)
    elif action == "tidy":
        expire_lapsed_orders(conn, now)
    elif action == "refund":
        live = conn.execute(sa.select(tickets.c.id).where(tickets.c.state == "issued")
                            .order_by(tickets.c.id)).scalars().all()
        if live:
            revoke_ticket(conn, live[pick % len(live)], "refunded", now)


def _check(conn, now) -> None:
    live = conn.execute(sa.select(order_lines.c.holds, order_lines.c.doc_hash).where(
        order_lines.c.state.in_(["held", "issued"]))).all()
    # a line of a lapsed order still counts until it is tidied: the books include it
    counted = Counter(q for r in live for q in r.holds["quotas"])
    for q in conn.execute(sa.select(quotas)).all():
        assert 0 <= q.used <= q.capacity and q.used == counted[q.id], q
    party_counts = Counter(tuple(k) for r in live for k in r.holds["counts"])
    for c in conn.execute(sa.select(purchase_counts)).all():
        assert c.used == party_counts[(c.scope, c.party)], c
    docs = Counter(r.doc_hash for r in live)
    assert max(docs.values(), default=0) <= 1
    held = conn.execute(sa.select(session_seats.c.order_id, orders.c.state).join(
        orders, orders.c.id == session_seats.c.order_id).where(
        session_seats.c.status == "held")).all()
    assert all(state in ("pending_payment", "expired") for _, state in held)
    sold = conn.execute(sa.select(session_seats.c.seat_id).where(
        session_seats.c.status == "sold")).scalars().all()
    issued = conn.execute(sa.select(tickets.c.seat_id).where(
        tickets.c.state == "issued", tickets.c.seat_id.is_not(None))).scalars().all()
    assert sorted(sold) == sorted(issued)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_sequence_of_order_actions_keeps_seats_quotas_and_counts_straight(hub, data):
    """Each example runs on the hub as the fixture made it: its steps share one connection in
    a transaction rolled back at the example's end (the fixture's hub is shared by every
    example, and a replayed or shrunk example must meet the same database). Each step is a
    savepoint of it, released when done and rolled back when refused."""
    made: list = []
    now = NOW
    with hub.engine.connect() as conn:
        conn.begin()
        try:
            assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar() == 0
            for _ in range(data.draw(st.integers(1, 12))):
                now += timedelta(minutes=data.draw(st.sampled_from([0, 1, 10, 16])))
                try:
                    with conn.begin_nested():
                        _step(hub, data.draw, conn, made, now)
                except HubError:
                    pass  # refused: nothing changed
                _check(conn, now)
        finally:
            conn.rollback()
