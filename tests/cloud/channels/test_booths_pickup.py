"""At a booth (both databases): the pick-up of tickets booked online, once, on a document one
of them names; a booth's staff; its takings of a China day beside the ledger."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier
from cloud.channels import booths
from cloud.channels.channels import create_channel
from cloud.core.audit import audit_log
from cloud.core.errors import HubError
from cloud.inventory import seats as inventory
from cloud.inventory.quotas import add_quota
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import capture, create_order
from sync.sample import resident_id
from sync.timeutil import CHINA, utcnow
from tests.cloud.pagekit import build_hub, post, text

DOC = resident_id("11010119900307123")
OTHER_DOC = resident_id("11010119850101001")


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    now = utcnow()
    with h.engine.begin() as conn:
        h.tier = add_price_tier(conn, h.session, "A", "Category A", 38000)
        add_quota(conn, "ga", 100, session_id=h.session)
        inventory.confirm_configuration(conn, h.session)
        inventory.put_on_sale(conn, h.session)
        h.booth = create_channel(conn, "north", "North booth", "booth", venue_id=h.venue,
                                 actor="t", now=now)
        booths.add_staff(conn, h.booth, "sales-user", "t", now)
    yield h
    h.engine.dispose()


def online_order(hub, holder=None, buyer="buyer:9", channel_id=None, provider="wechat"):
    """An order paid (by ``provider``), with one general-admission ticket: its number."""
    with hub.engine.begin() as conn:
        made = create_order(conn, OrderRequest(hub.session, (LineRequest(
            kind="ga", price_tier_id=hub.tier, holder=holder),), buyer=buyer,
            channel_id=channel_id))
        assert capture(conn, made.order_id, made.total, provider,
                       f"ref-{made.number}").state == "paid"
    return made.number


def refusal(hub, number, **proof) -> str:
    with hub.engine.begin() as conn, pytest.raises(HubError) as e:
        booths.pick_up(conn, hub.booth, number, actor="staff:1", **proof)
    return e.value.code


def test_tickets_booked_online_are_handed_over_once_on_a_document_they_name(hub):
    number = online_order(hub, holder=("张三", "resident_id", DOC))
    assert refusal(hub, number) == "pickup_proof"
    assert refusal(hub, number, doc_type="resident_id", doc_number=OTHER_DOC) == "pickup_proof"
    with hub.engine.begin() as conn:
        done = booths.pick_up(conn, hub.booth, number.lower(), doc_type="resident_id",
                              doc_number=DOC, actor="staff:1")
    assert done.order_number == number and len(done.tickets) == 1
    assert done.tickets[0]["code"] and done.tickets[0]["amount"] == 38000
    assert refusal(hub, number, doc_type="resident_id", doc_number=DOC) == \
        "picked_up_already"
    with hub.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log.c.after).where(
            audit_log.c.action == "booth.pickup")).scalars().all()
    assert [(r["number"], r["booth"], r["proof"]) for r in rows] == [
        (number, "north", "document")]
    assert DOC not in str(rows)


def test_a_pick_up_is_refused_for_an_order_not_paid_or_sold_at_a_counter(hub):
    with hub.engine.begin() as conn:
        waiting = create_order(conn, OrderRequest(hub.session, (LineRequest(
            kind="ga", price_tier_id=hub.tier),), buyer="buyer:9")).number
    assert refusal(hub, waiting) == "pickup_not_paid"
    assert refusal(hub, online_order(hub, buyer=None)) == "pickup_not_online"
    assert refusal(hub, "NOSUCHORDER") == "unknown_order"


def test_the_pick_up_page_hands_over_at_the_clerks_booth(hub):
    number = online_order(hub)
    sales = hub.client("sales")
    assert "North booth" in text(sales.get("/channels/pick-up"))
    done = post(sales, "/channels/pick-up", {"number": number}, page="/channels/pick-up")
    assert done.status_code == 200 and 'id="picked-up"' in text(done)
    again = post(sales, "/channels/pick-up", {"number": number}, page="/channels/pick-up")
    assert again.status_code == 409 and "already" in text(again)
    # a clerk at no booth hands nothing over
    assert hub.client("admin").get("/channels/pick-up").status_code == 409


def test_a_staff_member_works_at_one_booth_at_a_time(hub):
    now = utcnow()
    with hub.engine.begin() as conn:
        south = create_channel(conn, "south", "South booth", "booth", actor="t", now=now)
        web = create_channel(conn, "web", "Storefront", "storefront", actor="t", now=now)
    for channel_id, username, code in ((south, "sales-user", "staff_elsewhere"),
                                       (web, "ops-user", "not_a_booth"),
                                       (south, "nobody", "no_such_staff")):
        with hub.engine.begin() as conn, pytest.raises(HubError) as e:
            booths.add_staff(conn, channel_id, username, "t", now)
        assert e.value.code == code
    with hub.engine.begin() as conn:
        booths.remove_staff(conn, hub.booth, "sales-user", "t")
        assert booths.booth_of_staff(conn, hub.staff["sales"]) is None
        booths.add_staff(conn, south, "sales-user", "t", now)
        assert booths.booth_of_staff(conn, hub.staff["sales"]).id == south
    with hub.engine.begin() as conn, pytest.raises(HubError) as e:
        booths.remove_staff(conn, hub.booth, "sales-user", "t")
    assert e.value.code == "not_at_booth"


def test_a_booths_takings_of_a_day_match_the_ledger_and_differences_are_listed(hub):
    sales = hub.client("sales")
    for _ in range(2):
        assert post(sales, f"/box-office/{hub.session}/order",
                    {"ga": "1", "ga_tier": hub.tier, "payment": "cash"},
                    page="/").status_code == 303
    today = utcnow().astimezone(CHINA).date()
    with hub.engine.connect() as conn:
        t = booths.takings(conn, hub.booth, today)
    assert t["matches"] and t["differences"] == []
    assert [(r["provider"], r["orders"], r["takings"], r["ledger"]) for r in t["providers"]] \
        == [("offline", 2, 76000, 76000)]
    # an order paid through the booth that the ledger never heard of
    stray = online_order(hub, buyer=None, channel_id=hub.booth)
    with hub.engine.connect() as conn:
        t = booths.takings(conn, hub.booth, today)
    assert not t["matches"] and t["takings"] == 114000 and t["ledger"] == 76000
    assert t["differences"] == [{"number": stray, "provider": "wechat", "currency": "CNY",
                                 "takings": 38000, "ledger": 0}]
    page = hub.client("admin").get(f"/channels/{hub.booth}/takings?day={today.isoformat()}")
    assert page.status_code == 200 and stray in text(page)
