"""The box office as a point of sale on the one order path, on both databases: the seat map
shows each seat's status (and not by colour alone), several tickets in one order with a
holder each where the session is real-name, cash or card through the offline provider, every
field's refusal named beside it, the receipt with the codes once, the order page with its
payments, refunds and entries, the orders list, and cancelling a waiting order."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier
from cloud.catalog.products import add_product
from cloud.catalog.tables import seats
from cloud.core.audit import audit_log
from cloud.inventory import seats as inventory
from cloud.inventory.quotas import add_quota
from cloud.inventory.sessions import edit_session
from cloud.payments.refunds import open_refund
from cloud.payments.tables import payments
from cloud.sales.holders import holder
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import create_order
from cloud.sales.tables import holders, order_lines, orders, tickets
from sync.sample import resident_id
from sync.timeutil import utcnow
from tests.cloud.pagekit import build_hub, csrf, post, text

DOC = resident_id("11010119900307123")
OTHER_DOC = resident_id("11010119850101001")


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    with h.engine.begin() as conn:
        h.tier = add_price_tier(conn, h.session, "A", "Category A", 38000)
        add_quota(conn, "ga", 100, session_id=h.session)
        inventory.confirm_configuration(conn, h.session)
        inventory.put_on_sale(conn, h.session)
    yield h
    h.engine.dispose()


def seat_id(hub, number: str, row: str = "A1") -> int:
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(seats.c.id).where(
            seats.c.venue_id == hub.venue, seats.c.row == row, seats.c.number == number)
        ).scalar_one()


def sell(client, hub, **fields):
    return post(client, f"/box-office/{hub.session}/order",
                {"seat_tier": hub.tier, "ga_tier": hub.tier, "payment": "cash", **fields},
                page=f"/box-office/{hub.session}")


def count(hub, table) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def seat_class(page: str, label: str) -> str:
    m = re.search(r'<g class="seat (s-\w+)" data-seat="' + re.escape(label) + '"', page)
    assert m, f"no seat {label} on the map"
    return m.group(1)


def test_the_seat_map_shows_each_seat_status_with_a_mark_and_a_legend(hub):
    second, third, fifth = seat_id(hub, "2"), seat_id(hub, "3"), seat_id(hub, "5")
    with hub.engine.begin() as conn:
        create_order(conn, OrderRequest(hub.session, (LineRequest(
            seat_id=second, price_tier_id=hub.tier),)))
        # a hold past its payment deadline shows free at once, tidied or not
        create_order(conn, OrderRequest(hub.session, (LineRequest(
            seat_id=fifth, price_tier_id=hub.tier),)), now=utcnow() - timedelta(hours=1))
        inventory.reserve(conn, hub.session, [third], "Acme Travel",
                          utcnow() + timedelta(days=1))
    sales = hub.client("sales")
    assert sell(sales, hub, seats="L1-A1-1").status_code == 303
    page = text(sales.get(f"/box-office/{hub.session}"))
    assert [seat_class(page, f"L1-A1-{n}") for n in range(1, 6)] == [
        "s-sold", "s-held", "s-reserved", "s-free", "s-free"]
    # not by colour alone: each status is said in words and marked, and only free seats
    # take the focus
    assert 'aria-label="L1-A1-1: sold"' in page and 'aria-label="L1-A1-2: held"' in page
    assert 'aria-label="L1-A1-3: reserved"' in page and 'aria-label="L1-A1-4: free"' in page
    legend = page[page.index('id="seat-legend"'):]
    assert "sold (1)" in legend and "held (1)" in legend and "reserved (1)" in legend
    assert "free (2)" in legend
    sold = page[page.index('data-seat="L1-A1-1"') - 40:page.index('data-seat="L1-A1-2"')]
    assert "tabindex" not in sold and ">×<" in sold
    assert 'tabindex="0" role="checkbox"' in page[page.index('data-seat="L1-A1-4"'):][:200]
    assert "boxoffice.js" in page
    # the other zone is one click away, and its map is drawn
    other = text(sales.get(f"/box-office/{hub.session}?zone={zone_id(hub, 'B')}"))
    assert seat_class(other, "L1-B1-1") == "s-free" and 'data-seat="L1-A1-1"' not in other
    # a Chinese page says it in Chinese
    post(sales, "/lang", {"lang": "zh"}, page="/")
    zh = text(sales.get(f"/box-office/{hub.session}"))
    assert 'aria-label="L1-A1-1: 已售"' in zh and "已预留 (1)" in zh


def zone_id(hub, code: str) -> int:
    from cloud.catalog.tables import zones
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(zones.c.id).where(zones.c.venue_id == hub.venue,
                                                        zones.c.code == code)).scalar_one()


def test_several_real_name_tickets_in_one_order_paid_in_cash(hub):
    with hub.engine.begin() as conn:
        edit_session(conn, hub.session, real_name=True)
        product = add_product(conn, "WEEK", "Week pass", 99000, scope_kind="sessions",
                              scope=[hub.session])
        add_quota(conn, "pass", 10, product_id=product)
    sales = hub.client("sales")
    # the basket is checked and priced first; the holders are asked for each ticket
    check = post(sales, f"/box-office/{hub.session}/basket",
                 {"seats": "l1-a1-1, L1 - A1 - 2", "seat_tier": hub.tier, "ga": "1",
                  "ga_tier": hub.tier, f"pass_{product}": "1"},
                 page=f"/box-office/{hub.session}")
    page = text(check)
    assert check.status_code == 200 and "Check the order" in page
    assert "Seat L1-A1-1" in page and "Seat L1-A1-2" in page and "Week pass" in page
    assert "2,130.00 CNY" in page and 'name="holder_name_3"' in page
    people = {"holder_name_0": "张小三", "doc_type_0": "resident_id", "doc_number_0": DOC,
              "holder_name_1": "李四", "doc_type_1": "resident_id", "doc_number_1": OTHER_DOC,
              "holder_name_2": "王五", "doc_type_2": "passport", "doc_number_2": "E12345678",
              "holder_name_3": "赵六", "doc_type_3": "passport", "doc_number_3": "E87654321"}
    r = sell(sales, hub, seats="l1-a1-1, L1 - A1 - 2", ga="1", **{f"pass_{product}": "1"},
             **people)
    assert r.status_code == 303
    number = r.headers["Location"].split("/")[2]
    with hub.engine.connect() as conn:
        o = conn.execute(sa.select(orders).where(orders.c.number == number)).one()
        issued = conn.execute(sa.select(tickets).where(tickets.c.order_id == o.id)
                              .order_by(tickets.c.id)).all()
        paid = conn.execute(sa.select(payments).where(payments.c.order_id == o.id)).one()
        names = [holder(conn, t.holder_id).name for t in issued]
        sealed = conn.execute(sa.select(holders.c.sealed_name)).scalars().all()
        actions = conn.execute(sa.select(audit_log.c.action, audit_log.c.after).where(
            audit_log.c.actor == f"staff:{hub.staff['sales']}",
            audit_log.c.action != "staff.sign_in").order_by(audit_log.c.id)).all()
    assert (o.state, o.total, o.payment_provider) == ("paid", 213000, "offline")
    assert [t.amount for t in issued] == [38000, 38000, 38000, 99000]
    assert (paid.provider, paid.state, paid.amount) == ("offline", "succeeded", 213000)
    assert names == ["张小三", "李四", "王五", "赵六"]
    assert not any("张小三" in s for s in sealed)  # sealed, as the order path seals them
    assert [a.action for a in actions] == ["order.create", "ticket.issue", "order.paid",
                                         "boxoffice.payment"]
    assert actions[-1].after["method"] == "cash" and actions[-1].after["tickets"] == 4
    receipt = text(sales.get(r.headers["Location"]))
    assert receipt.count('class="qr ticket-code"') == 4
    assert '<span id="paid-by">Cash</span>' in receipt
    assert "张*三" in receipt and "张小三" not in receipt and DOC not in receipt
    assert all(t.number in receipt for t in issued)
    again = text(sales.get(r.headers["Location"]))
    assert 'class="qr ticket-code"' not in again and "shown only once" in again


def test_every_field_is_checked_and_named_and_nothing_is_sold(hub):
    with hub.engine.begin() as conn:
        edit_session(conn, hub.session, real_name=True)
    sales = hub.client("sales")
    base = f"/box-office/{hub.session}"
    r = post(sales, f"{base}/basket", {}, page=base)
    assert r.status_code == 422
    assert "Order: Pick at least one seat, general-admission ticket or pass." in text(r)
    r = post(sales, f"{base}/basket", {"seats": "L1-A1-1, L9-Z-9", "ga": "many"}, page=base)
    page = text(r)
    assert r.status_code == 422 and "Seats: No such seat at this venue: L9-Z-9." in page
    assert "General admission: A whole number from 0 to 50." in page
    r = post(sales, f"{base}/basket", {"seats": "L1-A1-1", "ga": "1"}, page=base)
    page = text(r)
    assert "Price of the seats: Choose a price." in page
    assert "Price of general admission: Choose a price." in page
    # a real-name session needs every holder; the document is checked, and never echoed
    wrong = DOC[:-1] + ("0" if DOC[-1] != "0" else "1")
    r = sell(sales, hub, seats="L1-A1-1, L1-A1-2", holder_name_0="张小三",
             doc_type_0="resident_id", doc_number_0=wrong, payment="")
    page = text(r)
    assert r.status_code == 422
    assert "Ticket 2, holder&#39;s name: This session is real-name" in page
    assert "Payment: Choose how the buyer pays." in page
    assert wrong not in page and "张小三" not in page
    r = sell(sales, hub, seats="L1-A1-1, L1-A1-2", holder_name_0="张小三",
             doc_type_0="resident_id", doc_number_0=wrong, holder_name_1="李四",
             doc_type_1="resident_id", doc_number_1=OTHER_DOC)
    page = text(r)
    assert r.status_code == 422 and "Ticket 1, document number: " in page
    assert "check digit does not match" in page and wrong not in page
    # one document, one ticket per session: the second line is refused by the order itself
    r = sell(sales, hub, seats="L1-A1-1, L1-A1-2", holder_name_0="张小三",
             doc_type_0="resident_id", doc_number_0=DOC, holder_name_1="张小三",
             doc_type_1="resident_id", doc_number_1=DOC)
    assert r.status_code == 409
    assert "Order: this document already has a ticket (or one held) for session" in text(r)
    # control characters reach no query: a customer's name with one is refused by name
    r = sell(sales, hub, seats="L1-A1-1\x00", customer="Acme\x00", holder_name_0="张小三",
             doc_type_0="resident_id", doc_number_0=DOC)
    assert r.status_code == 422
    assert "Customer: A name of up to 200 printable characters." in text(r)
    assert count(hub, orders) == 0 and count(hub, tickets) == 0 and count(hub, order_lines) == 0


def test_a_seat_sold_meanwhile_is_refused_and_named(hub):
    sales = hub.client("sales")
    assert sell(sales, hub, seats="L1-A1-4").status_code == 303
    r = sell(sales, hub, seats="L1-A1-3, L1-A1-4")
    assert r.status_code == 409
    assert "Seats: seat L1-A1-4 is not for sale in this session" in text(r)
    assert count(hub, orders) == 1


def test_the_order_page_shows_lines_payments_refunds_and_entries(hub):
    sales = hub.client("sales")
    r = sell(sales, hub, seats="L1-A1-1, L1-A1-2")
    number = r.headers["Location"].split("/")[2]
    with hub.engine.begin() as conn:
        o = conn.execute(sa.select(orders).where(orders.c.number == number)).one()
        ticket = conn.execute(sa.select(tickets.c.number).where(tickets.c.order_id == o.id)
                              .order_by(tickets.c.id)).scalars().first()
        pay = conn.execute(sa.select(payments.c.id).where(payments.c.order_id == o.id)
                           ).scalar_one()
        open_refund(conn, "offline", pay, 38000, "customer changed plans", "test",
                    out_refund_no="R-TEST-1")
    from tests.cloud.test_pages_tickets import _entered
    _entered(hub, ticket, admitted=False, reason="WRONG_GATE")
    ops = hub.client("ops")  # may look, may not sell
    page = text(ops.get(f"/orders/{number}"))
    assert "L1-A1-1" in page and "L1-A1-2" in page and ticket in page
    assert "760.00 CNY" in page and "R-TEST-1" in page and "customer changed plans" in page
    assert "requested" in page and f'href="/orders/{number}/refund"' in page
    assert "wrong gate" in page and "North gate box" in page
    assert "Cancel the order" not in page and 'class="qr' not in page
    assert post(ops, f"/orders/{number}/cancel", page="/").status_code == 403
    listed = text(ops.get(f"/orders?number={number[:4]}"))
    assert number in listed
    assert number not in text(ops.get("/orders?state=cancelled"))
    assert ops.get("/orders/NOSUCHORDER").status_code == 404


def test_a_waiting_order_is_cancelled_after_asking_and_its_seats_return(hub):
    fifth = seat_id(hub, "5")
    with hub.engine.begin() as conn:
        made = create_order(conn, OrderRequest(hub.session, (LineRequest(
            seat_id=fifth, price_tier_id=hub.tier),), actor="clerk"))
    sales = hub.client("sales")
    ask = text(sales.get(f"/orders/{made.number}/cancel"))
    assert "cannot be undone" in ask and f"Cancel order {made.number}?" in ask
    r = post(sales, f"/orders/{made.number}/cancel", page=f"/orders/{made.number}/cancel")
    assert r.status_code == 303
    assert "is cancelled: its seats are on sale again" in text(sales.get(r.headers["Location"]))
    assert seat_class(text(sales.get(f"/box-office/{hub.session}")), "L1-A1-5") == "s-free"
    r = post(sales, f"/orders/{made.number}/cancel", page=f"/orders/{made.number}/cancel")
    assert "The order was not cancelled" in text(sales.get(r.headers["Location"]))
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(audit_log.c.action).where(
            audit_log.c.action == "order.cancel")).scalars().all() == ["order.cancel"]


def test_a_clerk_without_the_sale_permission_sees_no_box_office(hub):
    ops = hub.client("ops")
    assert ops.get("/box-office").status_code == 403
    assert ops.get(f"/box-office/{hub.session}").status_code == 403
    r = ops.post(f"/box-office/{hub.session}/order",
                 data={"seats": "L1-A1-1", "csrf_token": csrf(ops, "/")})
    assert r.status_code == 403 and count(hub, orders) == 0
