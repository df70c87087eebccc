"""Selling through a channel (both databases): its switch, window and hours; its quotas and
the contract customers' common track counted beside the orders' own; day products on their
day with their daily stock; bundles; agreed prices."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.channels import channels as ch
from cloud.channels.errors import ChannelError
from cloud.channels.selling import sell_through
from cloud.core.errors import HubError
from cloud.inventory.seats import InventoryError
from cloud.inventory.tables import quotas
from cloud.sales.order_plan import LineRequest, OrderError, OrderRequest
from cloud.sales.orders import capture, create_order
from cloud.sales.tables import order_lines, orders, tickets
from sync.timeutil import CHINA
from tests.cloud.channels.channelkit import (
    TODAY,
    add_bundle,
    add_customer,
    add_day_product,
    channel_hub,
    stock,
)
from tests.cloud.orderkit import NOW


@pytest.fixture
def kit(hub_url):
    k = channel_hub(hub_url)
    yield k
    k.engine.dispose()


def std_seat(k, channel_id, **extra):
    return OrderRequest(session_id=k.hub.session, lines=(LineRequest(
        kind="seat", zone_id=k.hub.zones["A"], price_tier_id=k.hub.std),), **extra)


def day_lines(k, n=1, day=TODAY, product=None):
    return tuple(LineRequest(kind="pass", product_id=product or k.day_ticket, day=day)
                 for _ in range(n))


def test_a_channel_quota_limits_the_channels_sales_and_only_them(kit):
    with kit.engine.begin() as conn:
        ch.set_channel_quota(conn, kit.booth, 2, session_id=kit.hub.session,
                             price_tier_id=kit.hub.std, actor="t", now=NOW)
        for _ in range(2):
            sell_through(conn, kit.booth, std_seat(kit, kit.booth), NOW)
    with pytest.raises(InventoryError) as refused, kit.engine.begin() as conn:
        sell_through(conn, kit.booth, std_seat(kit, kit.booth), NOW)
    assert refused.value.code == "sold_out"
    assert f"chan:{kit.booth}:s{kit.hub.session}:t{kit.hub.std}" in str(refused.value)
    with kit.engine.begin() as conn:  # the storefront's sales are not the booth's
        sell_through(conn, kit.web, std_seat(kit, kit.web), NOW)
        assert conn.execute(sa.select(orders.c.channel_id).order_by(orders.c.id)
                            ).scalars().all() == [kit.booth, kit.booth, kit.web]
        used = conn.execute(sa.select(quotas.c.used).where(quotas.c.kind == "channel")).scalar()
    assert used == 2


def test_the_quota_cannot_be_set_below_what_the_channel_has_sold(kit):
    with kit.engine.begin() as conn:
        q = ch.set_channel_quota(conn, kit.booth, 2, session_id=kit.hub.session,
                                 price_tier_id=kit.hub.std, actor="t", now=NOW)
        sell_through(conn, kit.booth, std_seat(kit, kit.booth), NOW)
        assert ch.set_channel_quota(conn, kit.booth, 1, session_id=kit.hub.session,
                                    price_tier_id=kit.hub.std, actor="t", now=NOW) == q
    with pytest.raises(InventoryError) as refused, kit.engine.begin() as conn:
        ch.set_channel_quota(conn, kit.booth, 0, session_id=kit.hub.session,
                             price_tier_id=kit.hub.std, actor="t", now=NOW)
    assert refused.value.code == "capacity_below_used"


def test_a_channel_switched_off_or_outside_its_window_or_hours_sells_nothing(kit):
    with kit.engine.begin() as conn:
        ch.set_enabled(conn, kit.booth, False, "t", NOW)
    with pytest.raises(ChannelError, match="switched off"), kit.engine.begin() as conn:
        sell_through(conn, kit.booth, std_seat(kit, kit.booth), NOW)
    with kit.engine.begin() as conn:
        ch.set_enabled(conn, kit.booth, True, "t", NOW)
        ch.set_window(conn, kit.booth, NOW + timedelta(hours=1), None, "t", NOW)
    with pytest.raises(ChannelError) as refused, kit.engine.begin() as conn:
        sell_through(conn, kit.booth, std_seat(kit, kit.booth), NOW)
    assert refused.value.code == "channel_closed"
    local = NOW.astimezone(CHINA)  # 17:00 on a Wednesday
    with kit.engine.begin() as conn:
        ch.set_window(conn, kit.booth, None, None, "t", NOW)
        ch.set_hours(conn, kit.booth, {"days": [local.weekday()], "opens": "09:00",
                                       "closes": "17:00"}, "t", NOW)
    with pytest.raises(ChannelError) as refused, kit.engine.begin() as conn:
        sell_through(conn, kit.booth, std_seat(kit, kit.booth), NOW)
    assert refused.value.code == "channel_closed"
    with kit.engine.begin() as conn:
        ch.set_hours(conn, kit.booth, {"days": [local.weekday()], "opens": "09:00",
                                       "closes": "17:01"}, "t", NOW)
        assert sell_through(conn, kit.booth, std_seat(kit, kit.booth), NOW).total == 38000


BAD_HOURS = [
    ({"days": [7], "opens": "09:00", "closes": "17:00"}, "opening_hours.days"),
    ({"days": [1], "opens": "9:00", "closes": "17:00"}, "opening_hours.opens"),
    ({"days": [1], "opens": "18:00", "closes": "17:00"}, "opening_hours.closes"),
    ({"days": [1], "opens": "09:00", "closes": "24:01"}, "opening_hours.closes"),
    ({"days": [1], "opens": "09:00"}, "opening_hours"),
]


def refused_fields(kit, attempts) -> list:
    """Each attempt (a function of a connection) in its own transaction: the field its
    refusal names, or None when it was not refused."""
    fields = []
    for attempt in attempts:
        try:
            with kit.engine.begin() as conn:
                attempt(conn)
            fields.append(None)
        except HubError as e:
            fields.append(e.params.get("field"))
    return fields


def test_bad_opening_hours_are_refused_naming_the_field(kit):
    assert refused_fields(kit, [
        lambda conn, h=hours: ch.set_hours(conn, kit.booth, h, "t", NOW)
        for hours, _ in BAD_HOURS]) == [field for _, field in BAD_HOURS]


def test_contract_customers_share_a_common_track_beside_their_own(kit):
    with kit.engine.begin() as conn:
        a = ch.create_channel(conn, "cc-a", "A", "contract", customer_id=add_customer(conn, "A"),
                              actor="t", now=NOW)
        b = ch.create_channel(conn, "cc-b", "B", "contract", customer_id=add_customer(conn, "B"),
                              actor="t", now=NOW)
        ch.set_contract_quota(conn, kit.hub.session, kit.hub.std, 3, "t", NOW)
        for channel_id in (a, b):
            ch.set_channel_quota(conn, channel_id, 2, session_id=kit.hub.session,
                                 price_tier_id=kit.hub.std, actor="t", now=NOW)
        sell_through(conn, a, std_seat(kit, a), NOW)
        sell_through(conn, a, std_seat(kit, a), NOW)
    with pytest.raises(InventoryError, match="chan:"), kit.engine.begin() as conn:
        sell_through(conn, a, std_seat(kit, a), NOW)  # its own track is full
    with kit.engine.begin() as conn:
        sell_through(conn, b, std_seat(kit, b), NOW)
    with pytest.raises(InventoryError, match="contract:"), kit.engine.begin() as conn:
        sell_through(conn, b, std_seat(kit, b), NOW)  # the common track is full


def test_a_day_product_is_sold_on_its_day_from_that_days_stock(kit):
    with kit.engine.begin() as conn:
        made = create_order(conn, OrderRequest(None, day_lines(kit, 5)), NOW)
        assert made.total == 5 * 12000
    with pytest.raises(InventoryError) as refused, kit.engine.begin() as conn:
        create_order(conn, OrderRequest(None, day_lines(kit, 1)), NOW)
    assert refused.value.code == "sold_out" and f"day:{kit.day_ticket}:" in str(refused.value)
    with kit.engine.begin() as conn:  # the next day has its own stock
        create_order(conn, OrderRequest(None, day_lines(kit, 5, TODAY + timedelta(days=1))),
                     NOW)


@pytest.mark.parametrize("day,code", [(None, "day_required"),
                                      (TODAY - timedelta(days=1), "day_not_on_sale"),
                                      (TODAY + timedelta(days=3), "day_not_on_sale")])
def test_a_day_product_needs_a_day_to_come_with_stock(kit, day, code):
    with pytest.raises(OrderError) as refused, kit.engine.begin() as conn:
        create_order(conn, OrderRequest(None, day_lines(kit, 1, day)), NOW)
    assert refused.value.code == code and refused.value.params["field"] == "lines.0.day"


def test_a_day_ticket_admits_at_its_spot_on_its_day_only(kit):
    day = TODAY + timedelta(days=2)
    with kit.engine.begin() as conn:
        made = create_order(conn, OrderRequest(None, day_lines(kit, 1, day)), NOW)
        assert capture(conn, made.order_id, 12000, "offline", "cash-1", NOW).state == "paid"
        t = conn.execute(sa.select(tickets).where(tickets.c.order_id == made.order_id)).one()
        line = conn.execute(sa.select(order_lines.c.day).where(
            order_lines.c.order_id == made.order_id)).scalar_one()
    assert (t.kind, t.venues, line) == ("venues", [kit.spot], day)
    assert t.valid_from.astimezone(CHINA).isoformat() == f"{day.isoformat()}T00:00:00+08:00"
    assert t.valid_until - t.valid_from == timedelta(days=1)


def test_a_bundle_sells_its_parts_at_its_price_shared_in_proportion(kit):
    with kit.engine.begin() as conn:
        boat = add_day_product(conn, "BOAT", kit.spot, 5000)
        stock(conn, boat, TODAY, 1, 1)
        bundle = add_bundle(conn, "LAKE-BOAT", 15001, {kit.day_ticket: 1, boat: 1})
        made = create_order(conn, OrderRequest(None, (LineRequest(
            kind="pass", product_id=bundle, day=TODAY),)), NOW)
        amounts = conn.execute(sa.select(order_lines.c.product_id, order_lines.c.amount)
                               .where(order_lines.c.order_id == made.order_id)
                               .order_by(order_lines.c.product_id)).all()
    assert made.total == 15001 == sum(a for _, a in amounts)
    assert dict(amounts) == {kit.day_ticket: 10589, boat: 4412}  # 12000:5000 of 15001
    with pytest.raises(InventoryError), kit.engine.begin() as conn:  # the boat's day is full
        create_order(conn, OrderRequest(None, (LineRequest(
            kind="pass", product_id=bundle, day=TODAY),)), NOW)


def test_an_agreed_price_replaces_the_list_price(kit):
    with kit.engine.begin() as conn:
        made = create_order(conn, OrderRequest(None, (LineRequest(
            kind="pass", product_id=kit.day_ticket, day=TODAY, amount=9900),)), NOW)
    assert made.total == 9900


def test_the_storefront_channel_is_made_once(kit):
    with kit.engine.begin() as conn:
        assert ch.storefront_channel(conn, NOW) == kit.web == ch.storefront_channel(conn, NOW)


BAD_CHANNELS = [
    (("bad code!", "X", "booth"), "code"), (("b2", "", "booth"), "name"),
    (("b2", "X", "shop"), "kind"), (("b2", "X", "distributor"), "partner_id"),
    (("b2", "X", "contract"), "customer_id")]


def test_bad_channels_are_refused_naming_the_field(kit):
    assert refused_fields(kit, [
        lambda conn, a=args: ch.create_channel(conn, *a, actor="t", now=NOW)
        for args, _ in BAD_CHANNELS]) == [field for _, field in BAD_CHANNELS]


def test_a_channel_code_is_taken_once(kit):
    with pytest.raises(HubError) as refused, kit.engine.begin() as conn:
        ch.create_channel(conn, "booth-1", "Again", "booth", actor="t", now=NOW)
    assert refused.value.code == "channel_code_taken"


@pytest.mark.parametrize("name", ["customer:ACME", " Presale:3", "CUSTOMER:x"])
def test_staff_cannot_type_a_name_in_the_form_of_the_hubs_own_reservations(name):
    from cloud.inventory.seats import typed_customer

    with pytest.raises(InventoryError) as refused:
        typed_customer(name)
    assert (refused.value.code, refused.value.params["field"]) == ("reservation_name_kept",
                                                                   "customer")
    assert typed_customer("Harbour Corp") == "Harbour Corp" and typed_customer(None) is None


def test_a_booth_open_all_day_closes_at_the_days_end(kit):
    from cloud.channels.selling import within_hours

    hours = {"days": list(range(7)), "opens": "00:00", "closes": "24:00"}
    with kit.engine.begin() as conn:
        ch.set_hours(conn, kit.booth, hours, "t", NOW)
    late = NOW.astimezone(CHINA).replace(hour=23, minute=59, second=30)
    assert within_hours(hours, late) and within_hours(hours, late.replace(hour=0, minute=0))
