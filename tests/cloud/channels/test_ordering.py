"""Partners' orders (both databases): bound products at agreed prices, held and confirmed
from the partner's account in one transaction, refused whole when the account cannot pay,
seen only by their partner, given back to the account until their day begins."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.channels import ordering
from cloud.channels.accounts import balances
from cloud.channels.ordering import PartnerLine
from cloud.core.errors import HubError
from cloud.ledger.journal import trial_balance
from cloud.ledger.tables import partners
from cloud.sales.tables import orders, tickets
from tests.cloud.channels.channelkit import (
    TODAY,
    add_day_product,
    bind,
    channel_hub,
    distributor,
    price,
)
from tests.cloud.orderkit import NOW


@pytest.fixture
def kit(hub_url):
    k = channel_hub(hub_url)
    yield k
    k.engine.dispose()


def day_tickets(k, n, day=TODAY):
    return [PartnerLine(product_id=k.day_ticket, day=day, quantity=n)]


def test_a_confirmed_order_is_paid_from_the_account_at_the_agreed_price(kit):
    with kit.engine.begin() as conn:
        partner, channel = distributor(conn, kit, "TRAVEL2", prepaid=50000, amount=9000)
        listed = ordering.partner_products(conn, partner, NOW)
        made = ordering.place_order(conn, partner_id=partner, channel_id=channel,
                                    lines=day_tickets(kit, 2), confirm=True, actor="t", now=NOW)
        left = balances(conn, partner)
        assert set(trial_balance(conn).values()) <= {0}
    assert [(p["id"], p["price"]) for p in listed] == [(kit.day_ticket, 9000)]
    assert (made["state"], made["total"]) == ("paid", 18000)
    assert all(line["ticket"]["code"] and line["amount"] == 9000 for line in made["lines"])
    assert left["prepaid"] == 32000


def test_an_order_the_account_cannot_cover_leaves_nothing(kit):
    with kit.engine.begin() as conn:
        partner, channel = distributor(conn, kit, "POOR", prepaid=15000)
    with pytest.raises(HubError) as refused, kit.engine.begin() as conn:
        ordering.place_order(conn, partner_id=partner, channel_id=channel,
                             lines=day_tickets(kit, 2), confirm=True, actor="t", now=NOW)
    assert refused.value.code == "not_covered"
    with kit.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar() == 0
        assert balances(conn, partner)["prepaid"] == 15000


def test_a_held_order_is_confirmed_once_and_a_cancelled_one_gives_its_stock_back(kit):
    with kit.engine.begin() as conn:
        partner, channel = distributor(conn, kit, "HOLDER", prepaid=100000)
        held = ordering.place_order(conn, partner_id=partner, channel_id=channel,
                                    lines=day_tickets(kit, 5), confirm=False, actor="t",
                                    now=NOW)
        assert held["state"] == "pending_payment"
        assert ordering.availability(conn, partner, kit.day_ticket, [TODAY], NOW)[0][
            "available"] == 0
        ordering.cancel_order(conn, partner, held["number"], "t", NOW)
        assert ordering.availability(conn, partner, kit.day_ticket, [TODAY], NOW)[0][
            "available"] == 5
        again = ordering.place_order(conn, partner_id=partner, channel_id=channel,
                                     lines=day_tickets(kit, 1), confirm=False, actor="t",
                                     now=NOW)
        first = ordering.confirm_order(conn, partner, again["number"], "t", NOW)
        second = ordering.confirm_order(conn, partner, again["number"], "t", NOW)
        assert balances(conn, partner)["prepaid"] == 90000
    assert first == second and first["state"] == "paid"


def test_a_partner_sells_only_bound_products_at_a_price_in_force(kit):
    with kit.engine.begin() as conn:
        partner, channel = distributor(conn, kit, "LIMITED", prepaid=100000)
        other, _ = distributor(conn, kit, "OTHER", prepaid=0)
    with pytest.raises(HubError) as refused, kit.engine.begin() as conn:
        ordering.place_order(conn, partner_id=other, channel_id=channel,
                             lines=day_tickets(kit, 1), confirm=True, actor="t", now=NOW)
    assert refused.value.code == "unknown_channel"  # another partner's channel
    with kit.engine.begin() as conn:
        price(conn, partner, 7000, product=kit.day_ticket, since=NOW + timedelta(hours=1))
        at_first = ordering.place_order(conn, partner_id=partner, channel_id=channel,
                                        lines=day_tickets(kit, 1), confirm=True, actor="t",
                                        now=NOW)
        later = ordering.place_order(conn, partner_id=partner, channel_id=channel,
                                     lines=day_tickets(kit, 1, TODAY + timedelta(days=1)),
                                     confirm=True, actor="t", now=NOW + timedelta(hours=2))
    assert (at_first["total"], later["total"]) == (10000, 7000)
    with pytest.raises(HubError) as refused, kit.engine.connect() as conn:
        ordering.order_view(conn, other, at_first["number"])
    assert refused.value.code == "unknown_partner_order"


def test_a_product_not_bound_or_without_a_price_in_force_is_refused_naming_the_line(kit):
    with kit.engine.begin() as conn:
        partner, channel = distributor(conn, kit, "LIMITED", prepaid=100000)
        unbound = add_day_product(conn, "LAKE-BOAT", kit.spot, 5000)
        unpriced = add_day_product(conn, "LAKE-NIGHT", kit.spot, 8000)
        bind(conn, partner, unpriced)
    for product, code in ((unbound, "not_bound"), (unpriced, "no_agreed_price")):
        lines = [*day_tickets(kit, 1), PartnerLine(product_id=product, day=TODAY, quantity=1)]
        with pytest.raises(HubError) as refused, kit.engine.begin() as conn:
            ordering.place_order(conn, partner_id=partner, channel_id=channel, lines=lines,
                                 confirm=False, actor="t", now=NOW)
        assert refused.value.code == code
        assert refused.value.params["field"].startswith("lines.1")


def test_a_suspended_partner_orders_nothing(kit):
    with kit.engine.begin() as conn:
        partner, channel = distributor(conn, kit, "GONE", prepaid=100000)
        conn.execute(sa.update(partners).where(partners.c.id == partner)
                     .values(state="suspended"))
    with pytest.raises(HubError) as refused, kit.engine.begin() as conn:
        ordering.place_order(conn, partner_id=partner, channel_id=channel,
                             lines=day_tickets(kit, 1), confirm=True, actor="t", now=NOW)
    assert refused.value.code == "partner_suspended"


def test_tickets_given_back_before_their_day_refund_the_account(kit):
    with kit.engine.begin() as conn:
        partner, channel = distributor(conn, kit, "BACK", prepaid=30000)
        made = ordering.place_order(conn, partner_id=partner, channel_id=channel,
                                    lines=day_tickets(kit, 2, TODAY + timedelta(days=1)),
                                    confirm=True, actor="t", now=NOW)
        numbers = [line["ticket"]["number"] for line in made["lines"]]
        after = ordering.refund_tickets(conn, partner, made["number"], numbers[:1], "t", NOW)
        assert balances(conn, partner)["prepaid"] == 20000
        assert [line["ticket"]["state"] for line in after["lines"]] == ["refunded", "issued"]
        assert after["state"] == "partially_refunded"
    with pytest.raises(HubError) as refused, kit.engine.begin() as conn:
        ordering.refund_tickets(conn, partner, made["number"], numbers[1:], "t",
                                NOW + timedelta(days=2))
    assert refused.value.code == "not_refundable"


def test_the_ledger_names_a_partners_sale_by_its_channel(kit):
    from cloud.ledger.library import channel_expr
    from cloud.ledger.tables import ledger_entries

    with kit.engine.begin() as conn:
        partner, channel = distributor(conn, kit, "NAMED", prepaid=50000)
        made = ordering.place_order(conn, partner_id=partner, channel_id=channel,
                                    lines=day_tickets(kit, 1), confirm=True, actor="t", now=NOW)
        entry = conn.execute(sa.select(ledger_entries.c.channel).where(
            ledger_entries.c.order_id.is_not(None))).scalar_one()
        in_sql = conn.execute(sa.select(channel_expr()).where(
            orders.c.number == made["number"])).scalar_one()
    assert entry == in_sql == "distributor"
