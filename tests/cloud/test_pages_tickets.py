"""Ticket pages: the box office with real-name holders, finding a ticket by number or by the
holder's document (POST only, masked), the ticket page with its QR code, refund and void —
on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier
from cloud.catalog.tables import seats
from cloud.core.audit import audit_log
from cloud.core.changes import change_log
from cloud.inventory import seats as inventory
from cloud.inventory.quotas import add_quota
from cloud.sales.tables import orders, tickets
from cloud.sales.tickets import issue_ticket
from sync.sample import resident_id
from tests.cloud.pagekit import build_hub, csrf, post, text

NUMBER = resident_id("11010119900307123")
NAME = "张小三"


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    with h.engine.begin() as conn:
        h.tier = add_price_tier(conn, h.session, "A", "Category A", 38000)
        add_quota(conn, "ga", 100, session_id=h.session)  # general admission has a capacity
        inventory.confirm_configuration(conn, h.session)
        inventory.put_on_sale(conn, h.session)
    yield h
    h.engine.dispose()


def sell(client, hub, **fields):
    """One ticket sold at the box office and paid in cash: a seat (level, row, number) or
    general admission (``seating="general"``, a zone or any), at a price, with a holder or
    not, posted as the point of sale's order form sends it."""
    f = {"seating": "seat", "level": "L1", "row": "A1", "number": "1",
         "price_tier_id": hub.tier, "doc_type": "resident_id", **fields}
    data = {"payment": "cash", "customer": f.get("customer", ""),
            "holder_name_0": f.get("holder_name", ""), "doc_type_0": f["doc_type"],
            "doc_number_0": f.get("doc_number", "")}
    if f["seating"] == "general":
        data.update(ga="1", ga_tier=f["price_tier_id"], ga_zone=f.get("zone_id", ""))
    else:
        data.update(seats=f"{f['level']}-{f['row']}-{f['number']}",
                    seat_tier=f["price_tier_id"])
    return post(client, f"/box-office/{hub.session}/order", data,
                page=f"/box-office/{hub.session}")


def sold(hub, r) -> str:
    """The ticket number of a one-ticket sale, from the order its answer goes to."""
    assert r.status_code == 303, r.get_data(as_text=True)
    order = r.headers["Location"].split("/")[2]
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(tickets.c.number).join(
            orders, orders.c.id == tickets.c.order_id).where(orders.c.number == order)
        ).scalar_one()


def test_the_box_office_issues_a_real_name_ticket_shown_masked(hub):
    sales = hub.client("sales")
    assert "Final" in text(sales.get("/box-office"))
    r = sell(sales, hub, holder_name=NAME, doc_number=NUMBER[:6] + " " + NUMBER[6:])
    assert r.status_code == 303
    number = sold(hub, r)
    order = r.headers["Location"].split("/")[2]
    assert r.headers["Location"] == f"/orders/{order}/receipt"
    page = text(sales.get(r.headers["Location"]))
    assert f"Order {order} is paid; tickets issued: 1." in page and number in page
    assert "张*三" in page and NUMBER[:4] + "*" * 10 + NUMBER[-4:] in page
    assert NAME not in page and NUMBER not in page
    assert "L1-A1-1" in page and "380.00 CNY" in page and "<svg" in page
    # the code is shown once, to the clerk who sold it
    assert "<svg" not in text(sales.get(r.headers["Location"]))
    with hub.engine.connect() as conn:
        t = conn.execute(sa.select(tickets).where(tickets.c.number == number)).one()
    assert (t.amount, t.state) == (38000, "issued")
    again = sell(sales, hub, holder_name="李四", doc_number=resident_id("11010119850101001"))
    assert again.status_code == 409 and "not for sale" in text(again)


def test_a_chinese_page_says_in_chinese_that_a_seat_is_taken(hub):
    """A refusal of the sale's rules reaches a Chinese page in the words of its code."""
    sales = hub.client("sales")
    sales.post("/lang", data={"lang": "zh", "next": "/", "csrf_token": csrf(sales, "/")})
    assert sell(sales, hub).status_code == 303
    again = sell(sales, hub)
    page = text(again)
    assert again.status_code == 409
    assert "在本场次不可售（已售出、不可售，或已为他人预留）" in page
    assert "not for sale" not in page


def test_the_box_office_says_which_field_is_wrong_and_never_echoes_holder_data(hub):
    sales = hub.client("sales")
    wrong_digit = NUMBER[:-1] + ("0" if NUMBER[-1] != "0" else "1")
    r = sell(sales, hub, number="99", holder_name=NAME, doc_number=wrong_digit)
    assert r.status_code == 422
    page = text(r)
    assert "Seats: No such seat at this venue: L1-A1-99." in page
    assert wrong_digit not in page and NAME not in page
    r = sell(sales, hub, holder_name=NAME, doc_number=wrong_digit)
    assert r.status_code == 422
    page = text(r)
    assert "Ticket 1, document number: " in page and "check digit does not match" in page
    assert wrong_digit not in page and NAME not in page
    r = sell(sales, hub, doc_number=NUMBER)
    assert r.status_code == 422 and "Ticket 1, holder&#39;s name: The holder&#39;s name as " \
        "on the document." in text(r)
    r = sell(sales, hub, seating="general", zone_id="", price_tier_id="")
    assert r.status_code == 422 and "Choose a price." in text(r)
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar() == 0
    r = sell(sales, hub, seating="general", zone_id="")
    assert r.status_code == 303
    assert "general admission" in text(sales.get(f"/tickets/{sold(hub, r)}"))


def test_find_by_number_or_by_document_in_a_post_body(hub):
    sales = hub.client("sales")
    number = sold(hub, sell(sales, hub, holder_name=NAME, doc_number=NUMBER))
    ops = hub.client("ops")
    typed = f"{number[:4]}-{number[4:8]} {number[8:]}".lower().replace("0", "o")
    r = ops.get(f"/tickets?number={typed}")
    assert r.status_code == 303 and r.headers["Location"] == f"/tickets/{number}"
    assert "No ticket with the number T999" in text(ops.get("/tickets?number=T999"))
    typed_with_spaces = f"{NUMBER[:6]} {NUMBER[6:14]} {NUMBER[14:]}".lower()
    r = post(ops, "/tickets/holder", {"doc_number": typed_with_spaces}, page="/tickets")
    page = text(r)
    assert r.status_code == 200 and number in page and "张*三" in page
    assert NUMBER not in page and NAME not in page
    typed = post(ops, "/tickets/holder", {"doc_type": "resident_id", "doc_number": "1101"},
                 page="/tickets")
    assert typed.status_code == 422 and "must be 18 characters" in text(typed)
    none = post(ops, "/tickets/holder", {"doc_type": "passport", "doc_number": "E12345678"},
                page="/tickets")
    assert "No tickets for this document." in text(none)
    assert ops.get("/tickets/holder").status_code in (404, 405)
    with hub.engine.begin() as conn:  # a ticket issued before the format keeps its number
        conn.execute(sa.update(tickets).where(tickets.c.number == number)
                     .values(number="T000000042"))
    r = ops.get("/tickets?number=t42")
    assert r.status_code == 303 and r.headers["Location"] == "/tickets/T000000042"


def alone(hub, seat: str = "1") -> str:
    """A ticket issued outside any order (a credential, an imported ticket): its money, if
    any, was taken by hand, so it is refunded by itself."""
    with hub.engine.begin() as conn:
        seat_id = conn.execute(sa.select(seats.c.id).where(
            seats.c.level == "L1", seats.c.row == "A1", seats.c.number == seat)).scalar_one()
        return issue_ticket(conn, session_id=hub.session, seat_id=seat_id,
                            price_tier_id=hub.tier, actor="test").number


def test_refund_and_void_ask_first_then_revoke_at_every_venue(hub):
    sales = hub.client("sales")
    number = alone(hub)
    other = sold(hub, sell(sales, hub, number="2"))
    ops = hub.client("ops")
    assert "Refund" not in text(ops.get(f"/tickets/{number}"))
    assert post(ops, f"/tickets/{number}/refund", page="/tickets").status_code == 403
    confirm = text(sales.get(f"/tickets/{number}/refund"))
    assert "Refund ticket" in confirm and "cannot be undone" in confirm
    r = post(sales, f"/tickets/{number}/refund", page="/tickets")
    assert "is refunded" in text(sales.get(r.headers["Location"]))
    r = post(sales, f"/tickets/{number}/void", page="/tickets")
    assert "already refunded" in text(sales.get(r.headers["Location"]))
    # a ticket paid through an order is refunded by a request on the order, never by itself
    order = text(sales.get(f"/tickets/{other}"))
    assert 'id="refund-on-order"' in order and f'/tickets/{other}/refund"' not in order
    r = post(sales, f"/tickets/{other}/refund", page="/tickets")
    assert "was paid with order" in text(sales.get(r.headers["Location"]))
    post(sales, f"/tickets/{other}/void", page="/tickets")
    with hub.engine.connect() as conn:
        states = dict(conn.execute(sa.select(tickets.c.number, tickets.c.state)).all())
        revocations = conn.execute(sa.select(sa.func.count()).select_from(change_log)
                                   .where(change_log.c.kind == "revocation")).scalar()
        actions = list(conn.execute(sa.select(audit_log.c.action).where(
            audit_log.c.actor == f"staff:{hub.staff['sales']}",
            audit_log.c.action.in_(["ticket.refund", "ticket.void"]))
            .order_by(audit_log.c.id)).scalars())
    assert states == {number: "refunded", other: "void"}
    assert revocations == 2 and actions == ["ticket.refund", "ticket.void"]
    # the refunded seat is on sale again
    assert sell(sales, hub).status_code == 303


def _entered(hub, number: str, *, admitted: bool = True, reason: str = "OK",
             lane: str = "N1", minutes: int = 0) -> None:
    """An entry of the ticket as an appliance pushes it (cloud/ops/api.py stores these)."""
    import uuid
    from datetime import timedelta

    from cloud.fleet import appliances
    from cloud.fleet.tables import appliances as appliances_table
    from cloud.fleet.tables import entries
    from sync.timeutil import utcnow

    with hub.engine.begin() as conn:
        appliance = conn.execute(sa.select(appliances_table.c.id).limit(1)).scalar()
        if appliance is None:
            appliance = appliances.register(conn, hub.venue, "North gate box").id
        ticket_id = conn.execute(sa.select(tickets.c.id).where(tickets.c.number == number)
                                 ).scalar_one()
        now = utcnow() + timedelta(minutes=minutes)
        conn.execute(sa.insert(entries).values(
            id=str(uuid.uuid4()), appliance_id=appliance, venue_id=hub.venue, seq=1, at=now,
            lane=lane, direction="in", ticket_id=ticket_id, session_id=hub.session,
            admitted=admitted, reason=reason, cursor=1, received_at=now))


def test_a_ticket_that_admitted_someone_is_refunded_only_by_a_supervisor_with_a_reason(hub):
    sales, admin = hub.client("sales"), hub.client("admin")
    number = alone(hub)
    _entered(hub, number, admitted=False, reason="NOT_YET_VALID", lane="S1", minutes=-5)
    _entered(hub, number)
    # the ticket page shows what the appliances reported
    page = text(sales.get(f"/tickets/{number}"))
    assert "North gate box" in page and "not valid yet" in page and "S1" in page
    assert page.index("admitted") < page.index("not valid yet")  # newest first
    # a clerk is told, and refused (coded, translated) even when posting directly
    confirm = text(sales.get(f"/tickets/{number}/refund"))
    assert "only a supervisor" in confirm and "Yes, refund it" not in confirm
    r = post(sales, f"/tickets/{number}/refund", {"reason": "customer asked"},
             page="/tickets")
    assert "only a supervisor (whose role may approve refunds) may refund it" in text(
        sales.get(r.headers["Location"]))
    # a supervisor must give a reason
    confirm = text(admin.get(f"/tickets/{number}/refund"))
    assert "say why it is refunded all the same" in confirm and 'name="reason"' in confirm
    r = post(admin, f"/tickets/{number}/refund", {"reason": " ok "}, page="/tickets")
    assert r.headers["Location"].endswith(f"/tickets/{number}/refund")
    assert "Say why this ticket is refunded" in text(admin.get(r.headers["Location"]))
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(tickets.c.state).where(tickets.c.number == number)
                            ).scalar() == "issued"
        assert conn.execute(sa.select(sa.func.count()).select_from(change_log).where(
            change_log.c.kind == "revocation")).scalar() == 0
    r = post(admin, f"/tickets/{number}/refund",
             {"reason": "show cancelled after the first half"}, page="/tickets")
    assert "is refunded" in text(admin.get(r.headers["Location"]))
    with hub.engine.connect() as conn:
        audit = conn.execute(sa.select(audit_log.c.actor, audit_log.c.after).where(
            audit_log.c.action == "ticket.refund")).one()
    assert audit.actor == f"staff:{hub.staff['admin']}"
    assert audit.after == {"state": "refunded", "admissions": 1,
                           "reason": "show cancelled after the first half"}
    # a ticket nobody used is refunded by the clerk as before, with nothing asked
    unused = alone(hub, "2")
    _entered(hub, unused, admitted=False, reason="WRONG_GATE")
    assert "Reason (required)" not in text(sales.get(f"/tickets/{unused}/refund"))
    r = post(sales, f"/tickets/{unused}/refund", page="/tickets")
    assert "is refunded" in text(sales.get(r.headers["Location"]))


def test_the_ticket_page_shows_its_entry_history_in_chinese(hub):
    sales = hub.client("sales")
    number = sold(hub, sell(sales, hub))
    assert "No appliance has reported an entry" in text(sales.get(f"/tickets/{number}"))
    _entered(hub, number, admitted=False, reason="WRONG_GATE")
    post(sales, "/lang", {"lang": "zh"}, page=f"/tickets/{number}")
    page = text(sales.get(f"/tickets/{number}"))
    assert "入口不符" in page and "已拒绝" in page and "场馆验票主机" in page


def test_the_session_page_counts_a_seat_held_by_an_order(hub):
    from cloud.catalog.tables import seats
    from cloud.sales.order_plan import LineRequest, OrderRequest
    from cloud.sales.orders import create_order

    with hub.engine.begin() as conn:
        seat_id = conn.execute(sa.select(seats.c.id).where(seats.c.row == "A1",
                                                           seats.c.number == "2")).scalar()
        create_order(conn, OrderRequest(hub.session, (LineRequest(
            seat_id=seat_id, price_tier_id=hub.tier),)))
    assert hub.client("admin").get(f"/sessions/{hub.session}").status_code == 200
