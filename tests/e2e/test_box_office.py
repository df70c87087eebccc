"""The box office in headless Chromium against a real `wicket-hub serve` process: a clerk picks
seats on the SVG seat map by clicking (and by keyboard), types the holders of a real-name
session, takes cash and sees the receipt; a seat sold elsewhere shows as sold and cannot be
picked. Every wait is for a state of the page, never for time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.tables import seats
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.db import init_db, make_engine
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session, edit_session
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import capture, create_order
from cloud.sales.tables import orders, tickets
from cloud.staff.staff import create_staff
from sync.sample import resident_id
from sync.timeutil import utcnow
from tests.e2e.test_hub_process import serving_hub

PASSWORD = "correct horse battery"
SEATS = "level,zone,row,number,category\n" + "".join(f"L1,A,1,{n},std\n" for n in range(1, 9))


class BoxOffice:
    def __init__(self, url: str, base: str, session: int, venue: int):
        self.url, self.base, self.session, self.venue = url, base, session, venue

    def sell_elsewhere(self, number: str) -> None:
        """Another outlet sells seat L1-1-<number> (its order paid on the one order path)."""
        engine = make_engine(self.url)
        try:
            with engine.connect() as conn:
                seat_id = conn.execute(sa.select(seats.c.id).where(
                    seats.c.venue_id == self.venue, seats.c.number == number)).scalar_one()
            with engine.begin() as conn:
                made = create_order(conn, OrderRequest(self.session, (LineRequest(
                    seat_id=seat_id, holder=("王五", "passport", f"E{number}2345678")),),
                    actor="outlet"))
                assert capture(conn, made.order_id, made.total, "offline",
                               f"outlet-{made.number}").state == "paid"
        finally:
            engine.dispose()


@pytest.fixture
def box_office(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    init_db(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        add_zone(conn, venue, "A", "North Stand")
        assert import_seats_csv(conn, venue, SEATS).ok
        create_staff(conn, "chen", PASSWORD, "sales", actor="test")
        start = utcnow() + timedelta(days=1)
        session = create_session(conn, create_event(conn, "G", "Games"), venue, "Final", start,
                                 start + timedelta(hours=2))
        add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")
        edit_session(conn, session, real_name=True)
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
    engine.dispose()
    with serving_hub(url) as (base, proc):
        yield BoxOffice(url, base, session, venue)


def _signed_in(p, shop: BoxOffice):
    from playwright.sync_api import expect

    browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{shop.base}/box-office/{shop.session}")
    page.fill("input[name=username]", "chen")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url(f"{shop.base}/box-office/{shop.session}")
    expect(page.locator("#seat-map.ready")).to_be_visible()  # the script is running
    return browser, page


def seat(page, number: str):
    return page.locator(f'g.seat[data-seat="L1-1-{number}"]')


def test_a_clerk_picks_two_seats_on_the_map_types_holders_and_takes_cash(box_office, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shop = box_office
    with sync_playwright() as p:
        browser, page = _signed_in(p, shop)
        seat(page, "2").click()
        seat(page, "3").click()
        expect(page.locator("#seats")).to_have_value("L1-1-2, L1-1-3")
        expect(seat(page, "2")).to_have_attribute("aria-checked", "true")
        expect(page.locator("svg.seat-map g.seat.picked")).to_have_count(2)
        # by keyboard: a seat takes the focus, Enter picks it and Space puts it back
        seat(page, "5").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#seats")).to_have_value("L1-1-2, L1-1-3, L1-1-5")
        page.keyboard.press(" ")
        expect(page.locator("#seats")).to_have_value("L1-1-2, L1-1-3")
        page.click("#to-checkout")
        expect(page.locator("#basket-lines tbody tr.line")).to_have_count(2)
        expect(page.locator("#basket-total")).to_have_text("760.00 CNY")
        page.fill("input[name=holder_name_0]", "张小三")
        page.fill("input[name=doc_number_0]", resident_id("11010119900307123"))
        page.fill("input[name=holder_name_1]", "李四")
        page.fill("input[name=doc_number_1]", resident_id("11010119850101001"))
        page.check("input[name=payment][value=cash]")
        page.click("#sell")
        page.wait_for_url("**/receipt")
        expect(page.locator("#receipt-lines tr.receipt-ticket")).to_have_count(2)
        expect(page.locator("#ticket-codes figure.ticket-code svg")).to_have_count(2)
        expect(page.locator("#order-state")).to_have_text("paid")
        receipt = page.inner_text("#receipt")
        assert "L1-1-2" in receipt and "L1-1-3" in receipt and "张*三" in receipt
        assert "张小三" not in receipt
        page.screenshot(path=tmp_path / "receipt.png", full_page=True)
        # back on the map, both seats are sold
        page.goto(f"{shop.base}/box-office/{shop.session}")
        expect(seat(page, "2")).to_have_attribute("data-status", "sold")
        expect(seat(page, "3")).to_have_attribute("data-status", "sold")
        browser.close()
    engine = make_engine(shop.url)
    with engine.connect() as conn:
        o = conn.execute(sa.select(orders)).one()
        sold = conn.execute(sa.select(sa.func.count()).select_from(tickets)
                            .where(tickets.c.order_id == o.id)).scalar()
    engine.dispose()
    assert (o.state, o.total, o.payment_provider, sold) == ("paid", 76000, "offline", 2)


def test_a_seat_sold_elsewhere_shows_as_sold_and_cannot_be_picked(box_office):
    from playwright.sync_api import expect, sync_playwright

    shop = box_office
    shop.sell_elsewhere("4")
    with sync_playwright() as p:
        browser, page = _signed_in(p, shop)
        expect(seat(page, "4")).to_have_attribute("data-status", "sold")
        expect(seat(page, "4")).to_have_attribute("aria-disabled", "true")
        expect(seat(page, "4")).to_have_class("seat s-sold")
        seat(page, "4").click(force=True)  # a click on it does nothing
        seat(page, "6").click()  # (and the next click is seen: the map is listening)
        expect(page.locator("#seats")).to_have_value("L1-1-6")
        expect(page.locator("svg.seat-map g.seat.picked")).to_have_count(1)
        # a seat picked here and sold elsewhere before the clerk goes on is refused by name
        shop.sell_elsewhere("6")
        page.click("#to-checkout")
        expect(page.locator("#seats-error")).to_contain_text("L1-1-6")
        expect(page.locator("#seats-error")).to_contain_text("not for sale")
        expect(seat(page, "6")).to_have_attribute("data-status", "sold")
        expect(page.locator("svg.seat-map g.seat.picked")).to_have_count(0)
        browser.close()
