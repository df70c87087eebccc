"""A hub selling one session with partners and split rules, and the payment steps the ledger
tests take through the payments area's own rules (the order captured by ``place``, refunds
moved by ``move_refund``), as the notifications and the worker do."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from cloud.ledger import chart
from cloud.ledger.tables import partners, split_rules
from cloud.payments.capturing import place
from cloud.payments.checkout import apply_trade_status, open_payment
from cloud.payments.providers import TradeStatus
from cloud.payments.refunds import open_refund
from cloud.payments.tables import payment_refunds
from cloud.payments.transitions import move_refund
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import create_order
from tests.cloud.orderkit import NOW, OrderHub, build

ORGANISER, VENUE = 1, 2


def add_partner(conn: sa.Connection, partner_id: int, kind: str) -> None:
    conn.execute(sa.insert(partners).values(id=partner_id, code=f"P{partner_id}",
                                            name=f"Partner {partner_id}", kind=kind,
                                            settle_days=0, created_by="t", created_at=NOW))
    chart.ensure(conn, chart.payable(partner_id), now=NOW)


def add_rule(conn: sa.Connection, part: str, partner_id: int | None, bp: int = 0,
             fixed: int = 0, since: datetime = NOW - timedelta(days=30), **scope) -> int:
    return conn.execute(sa.insert(split_rules).values(
        part=part, partner_id=partner_id, basis_points=bp, fixed_per_ticket=fixed,
        effective_from=since, created_by="t", created_at=NOW, **scope)
        .returning(split_rules.c.id)).scalar_one()


def ledger_hub(url: str) -> OrderHub:
    """The order hub with an organiser (the rest), a venue (10 % and 1 yuan a ticket), the
    platform (5 %) and WeChat Pay's fee (0.6 %)."""
    hub = build(url)
    with hub.engine.begin() as conn:
        add_partner(conn, ORGANISER, "organiser")
        add_partner(conn, VENUE, "venue")
        add_rule(conn, "organiser", ORGANISER, event_id=hub.event)
        add_rule(conn, "venue", VENUE, 1000, 100)
        add_rule(conn, "platform", None, 500)
        add_rule(conn, "provider_fee", None, 60, provider="wechat")
    return hub


def order(conn: sa.Connection, hub: OrderHub, now: datetime, seats: int = 1,
          buyer: str = "buyer:1"):
    lines = tuple(LineRequest(zone_id=hub.zones["A"], price_tier_id=hub.std)
                  for _ in range(seats))
    return create_order(conn, OrderRequest(hub.session, lines, buyer=buyer), now)


def pay(conn: sa.Connection, order_id: int, amount: int, now: datetime,
        provider: str = "wechat"):
    """A payment of ``amount`` opened and reported paid, placed on its order: the outcome."""
    row = open_payment(conn, provider, order_id, amount, now)
    outcome = apply_trade_status(conn, row, TradeStatus("succeeded", amount, "ref"), now)
    if outcome.newly_succeeded:
        place(conn, outcome, now)
    return outcome


def refund(conn: sa.Connection, payment_id: int, amount: int, now: datetime,
           state: str = "succeeded", provider: str = "wechat") -> int:
    rid = open_refund(conn, provider, payment_id, amount, "asked", "t", now)
    r = conn.execute(sa.select(payment_refunds).where(payment_refunds.c.id == rid)).one()
    move_refund(conn, r, state, "refund-ref", now)
    return rid
