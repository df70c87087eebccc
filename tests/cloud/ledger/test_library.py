"""The ticket library against the ledger, and the costs of sales, on both databases: orders
sold on the web and at the box office, paid and refunded through the payments area's flow (so
the ledger's entries are the ones the hub really posts), tickets refunded, voided and admitted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.ledger.library import channel_expr, costs, ticket_library
from cloud.ledger.posting import channel_of
from cloud.ops.tables import entered_tickets
from cloud.sales.tables import orders, tickets
from cloud.sales.tickets import revoke_ticket
from tests.cloud.ledger.reconkit import PRICE, make_shop, pay, refund

NOW = datetime.now(UTC)
SINCE, UNTIL = NOW - timedelta(hours=1), NOW + timedelta(hours=1)


@pytest.fixture
def shop(hub_url):
    shop = make_shop(hub_url)
    yield shop
    shop.engine.dispose()


def _tickets(shop, order_id: int) -> list[int]:
    with shop.engine.connect() as conn:
        return conn.execute(sa.select(tickets.c.id).where(tickets.c.order_id == order_id)
                            .order_by(tickets.c.id)).scalars().all()


@pytest.fixture
def sold(shop):
    """A web order of 2 tickets, one admitted at the gate; a box-office order of 3, one
    refunded with its money, one voided."""
    web = pay(shop, tickets=2, buyer="buyer:1", now=NOW)
    booth = pay(shop, tickets=3, now=NOW)
    admitted, _ = _tickets(shop, web.order_id)
    back, voided, _ = _tickets(shop, booth.order_id)
    with shop.engine.begin() as conn:
        conn.execute(sa.insert(entered_tickets).values(session_id=shop.session,
                                                       ticket_id=admitted, entry_id="e-1"))
        revoke_ticket(conn, back, "refunded", NOW, "staff:1")
        revoke_ticket(conn, voided, "void", NOW, "staff:1")
    refund(shop, booth, PRICE, now=NOW)
    return web, booth


def _library(shop, since=SINCE, until=UNTIL) -> list[tuple]:
    with shop.engine.connect() as conn:
        return [(r.session_id, r.session_name, r.channel, r.orders, r.sold, r.refunded,
                 r.voided, r.used, r.ticket_amount, r.ledger_amount, r.difference)
                for r in ticket_library(conn, since, until)]


def test_the_tickets_agree_with_the_ledger_per_session_and_channel(shop, sold):
    assert _library(shop) == [
        (shop.session, "Final", "box_office", 1, 3, 1, 1, 0, 2 * PRICE, 2 * PRICE, 0),
        (shop.session, "Final", "web", 1, 2, 0, 0, 1, 2 * PRICE, 2 * PRICE, 0),
    ]
    assert _library(shop, UNTIL, UNTIL + timedelta(hours=1)) == []  # paid before the period


def test_a_ticket_refunded_whose_money_has_not_gone_back_is_a_difference(shop, sold):
    _web, booth = sold
    *_, last = _tickets(shop, booth.order_id)
    with shop.engine.begin() as conn:
        revoke_ticket(conn, last, "refunded", NOW, "staff:1")
    [row] = [r for r in _library(shop) if r[2] == "box_office"]
    assert row[4:] == (3, 2, 1, 0, PRICE, 2 * PRICE, PRICE)
    refund(shop, booth, PRICE, now=NOW)  # the money goes back: they agree again
    [row] = [r for r in _library(shop) if r[2] == "box_office"]
    assert row[-3:] == (PRICE, PRICE, 0)


def test_the_channel_in_sql_is_the_channel_of_the_ledgers_entries(shop, sold):
    with shop.engine.connect() as conn:
        rows = conn.execute(sa.select(orders, channel_expr().label("sql_channel"))).all()
    assert [(channel_of(r), r.sql_channel) for r in rows] == [("web", "web"),
                                                            ("box_office", "box_office")]


def test_costs_are_each_part_of_the_split_net_of_refunds(shop, sold):
    with shop.engine.connect() as conn:
        found = [(r.event_id, r.event_name, r.channel, r.gross, r.refunds, r.provider_fees,
                  r.platform_fees, r.distributor, r.agent, r.organiser, r.venue)
                 for r in costs(conn, SINCE, UNTIL)]
        assert costs(conn, UNTIL, UNTIL + timedelta(hours=1)) == []
    web, booth = 2 * PRICE, 3 * PRICE
    # platform 5 %, provider 0.6 %, the distributor 10 % of the web's sales, the organiser the
    # rest (here: undistributed, no organiser rule); the refund of a third of the booth's
    # order gives back a third of each part
    assert found == [
        (shop.event, "The Games", "box_office", booth, PRICE, booth * 6 // 1000 * 2 // 3,
         booth * 5 // 100 * 2 // 3, 0, 0, (booth - booth * 56 // 1000) * 2 // 3, 0),
        (shop.event, "The Games", "web", web, 0, web * 6 // 1000, web * 5 // 100,
         web // 10, 0, web - web * 156 // 1000, 0),
    ]


def test_money_no_order_kept_is_no_sale_and_no_cost(shop):
    paid = pay(shop, tickets=1, amount=12_345, now=NOW)    # not the order's total: unplaced
    refund(shop, paid, 12_345, now=NOW)
    with shop.engine.connect() as conn:
        assert costs(conn, SINCE, UNTIL) == []
    assert _library(shop) == []  # its order was never paid
