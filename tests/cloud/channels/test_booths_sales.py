"""The box office sells under the name of its clerk's booth (both databases): refused while
the booth is switched off or closed, counted against the booth's quotas; the storefront sells
through its own channel, refused while that is off."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier
from cloud.catalog.tables import seats
from cloud.channels import booths
from cloud.channels.channels import create_channel, set_channel_quota, set_enabled
from cloud.channels.errors import ChannelError
from cloud.inventory import seats as inventory
from cloud.inventory.quotas import add_quota
from cloud.inventory.tables import quotas
from cloud.sales.tables import orders
from cloud.storefront import checkout
from sync.timeutil import CHINA, utcnow
from tests.cloud.pagekit import build_hub, post, text


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


def sell(client, hub, **fields):
    return post(client, f"/box-office/{hub.session}/order",
                {"seat_tier": hub.tier, "ga_tier": hub.tier, "payment": "cash", **fields},
                page="/")


def sold(hub) -> list:
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(orders.c.channel_id, orders.c.state)
                            .order_by(orders.c.id)).all()


def test_the_box_office_sells_under_the_clerks_booth_and_not_while_it_is_off(hub):
    sales = hub.client("sales")
    assert sell(sales, hub, ga="1").status_code == 303
    assert sold(hub) == [(hub.booth, "paid")]
    with hub.engine.begin() as conn:
        set_enabled(conn, hub.booth, False, "t", utcnow())
    page = sales.get(f"/box-office/{hub.session}")
    assert page.status_code == 409 and "North booth" in text(page)
    assert "is switched off" in text(page)
    refused = sell(sales, hub, ga="1")
    assert refused.status_code == 409 and len(sold(hub)) == 1
    # a clerk at no booth sells as before, under no channel
    admin = hub.client("admin")
    assert sell(admin, hub, ga="1").status_code == 303
    assert sold(hub)[-1] == (None, "paid")


def test_the_box_office_sells_only_in_the_booths_opening_hours(hub):
    now = utcnow().astimezone(CHINA)
    other_day = (now.weekday() + 3) % 7
    with hub.engine.begin() as conn:
        booths.set_booth_hours(conn, hub.booth, {"days": [other_day], "opens": "00:00",
                                                 "closes": "23:59"}, "t", utcnow())
    sales = hub.client("sales")
    refused = sell(sales, hub, ga="1")
    assert refused.status_code == 409 and "opening hours" in text(refused)
    assert sold(hub) == []
    with hub.engine.begin() as conn:
        booths.set_booth_hours(conn, hub.booth, {"days": list(range(7)), "opens": "00:00",
                                                 "closes": "23:59"}, "t", utcnow())
    if now.strftime("%H:%M") < "23:59":  # the last minute of a China day is outside them
        assert sell(sales, hub, ga="1").status_code == 303


def test_a_booths_quota_of_a_session_tier_sells_two_and_refuses_the_third(hub):
    with hub.engine.begin() as conn:
        set_channel_quota(conn, hub.booth, 2, session_id=hub.session, price_tier_id=hub.tier,
                          actor="t", now=utcnow())
    sales = hub.client("sales")
    assert sell(sales, hub, ga="1").status_code == 303
    assert sell(sales, hub, ga="1").status_code == 303
    third = sell(sales, hub, ga="1")
    assert third.status_code == 409 and "sold out" in text(third).lower()
    assert [s.state for s in sold(hub)] == ["paid", "paid"]
    with hub.engine.connect() as conn:
        used = conn.execute(sa.select(quotas.c.used, quotas.c.capacity)
                            .where(quotas.c.kind == "channel")).one()
    assert tuple(used) == (2, 2)
    # another clerk, at no booth, is not counted against the booth's quota
    assert sell(hub.client("admin"), hub, ga="1").status_code == 303


def test_the_storefront_sells_through_its_channel_and_not_while_it_is_off(hub):
    with hub.engine.connect() as conn:
        seat = conn.execute(sa.select(seats.c.id, seats.c.zone_id).where(
            seats.c.venue_id == hub.venue).order_by(seats.c.id)).first()
    pick = [checkout.Pick(seat_id=seat.id, zone_id=seat.zone_id, price_tier_id=hub.tier)]
    with hub.engine.begin() as conn:
        made = checkout.place_order(conn, 7, hub.session, pick, [""])
        web = conn.execute(sa.select(orders.c.channel_id).where(
            orders.c.id == made.order_id)).scalar_one()
        set_enabled(conn, web, False, "t", utcnow())
    with hub.engine.begin() as conn, pytest.raises(ChannelError) as refused:
        checkout.place_order(conn, 8, hub.session, pick, [""],
                             now=utcnow() + timedelta(seconds=1))
    assert refused.value.code == "channel_off"
    assert len(sold(hub)) == 1
