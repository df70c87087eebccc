"""What the reconciliation and ticket-library tests share: a session on sale with split
rules, and orders paid and refunded the way the payments area does it (the payment moved to
succeeded and its order placed by cloud/payments/capturing.py ``place``, a refund moved to
succeeded by cloud/payments/transitions.py ``move_refund``), so every entry the tests
reconcile was posted by the real flow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.db import init_db, make_engine
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.ledger.tables import partners, split_rules
from cloud.payments.capturing import place
from cloud.payments.checkout import open_payment
from cloud.payments.refunds import open_refund
from cloud.payments.tables import payment_refunds, payments
from cloud.payments.transitions import move_payment, move_refund
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import create_order

SEATS = "level,zone,row,number,category\n" + "".join(f"L1,A,1,{n},std\n"
                                                      for n in range(1, 21))
PRICE = 38_000
BEGIN = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Shop:
    engine: sa.Engine
    event: int
    session: int
    zone: int
    tier: int
    distributor: int  # partner id


@dataclass(frozen=True)
class Paid:
    order_id: int
    payment_id: int
    out_trade_no: str
    amount: int


def make_shop(hub_url: str) -> Shop:
    """A session of 20 seats at 380 yuan on sale, and the split rules every sale takes: the
    platform 5 %, the provider's fee 0.6 %, a distributor 10 % of the web's sales."""
    init_db(hub_url)
    engine = make_engine(hub_url)
    start = datetime.now(UTC) + timedelta(days=10)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        zone = add_zone(conn, venue, "A", "Zone A")
        assert import_seats_csv(conn, venue, SEATS).ok
        event = create_event(conn, "GAMES", "The Games")
        session = create_session(conn, event, venue, "Final", start, start + timedelta(hours=3))
        tier = add_price_tier(conn, session, "STD", "Standard", PRICE, seat_category="std")
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
        distributor = conn.execute(sa.insert(partners).values(
            code="DIST", name="Distributor", kind="distributor", created_by="test",
            created_at=BEGIN).returning(partners.c.id)).scalar_one()
        for part, partner_id, bp, channel in (("platform", None, 500, None),
                                              ("provider_fee", None, 60, None),
                                              ("distributor", distributor, 1000, "web")):
            conn.execute(sa.insert(split_rules).values(
                part=part, partner_id=partner_id, basis_points=bp, channel=channel,
                effective_from=BEGIN, created_by="test", created_at=BEGIN))
    return Shop(engine, event, session, zone, tier, distributor)


def pay(shop: Shop, provider: str = "wechat", tickets: int = 2, buyer: str | None = None,
        now: datetime | None = None, amount: int | None = None) -> Paid:
    """An order of ``tickets`` seats, paid: its payment succeeded and placed, as a
    notification does it (``amount`` other than the order's total: an order that cannot take
    it, refunded by a job, posted as unplaced)."""
    now = now or datetime.now(UTC)
    with shop.engine.begin() as conn:
        order = create_order(conn, OrderRequest(
            shop.session, tuple(LineRequest(zone_id=shop.zone, price_tier_id=shop.tier)
                                for _ in range(tickets)), buyer=buyer, actor="staff:1"), now)
        row = open_payment(conn, provider, order.order_id, amount or order.total, now)
        outcome = move_payment(conn, row, "succeeded", "4200" + row.out_trade_no, now)
        assert outcome.newly_succeeded
        place(conn, outcome, now)
    return Paid(order.order_id, row.id, row.out_trade_no, amount or order.total)


def refund(shop: Shop, paid: Paid, amount: int, now: datetime | None = None,
           succeed: bool = True) -> str:
    """A refund of ``amount`` of the payment, asked and (unless ``succeed`` is false: its
    notification never came) succeeded; its refund number."""
    now = now or datetime.now(UTC)
    with shop.engine.begin() as conn:
        provider = conn.execute(sa.select(payments.c.provider)
                                .where(payments.c.id == paid.payment_id)).scalar_one()
        refund_id = open_refund(conn, provider, paid.payment_id, amount, "changed plans",
                                "staff:1", now)
        r = conn.execute(sa.select(payment_refunds)
                         .where(payment_refunds.c.id == refund_id)).one()
        move_refund(conn, r, "processing", None, now)
        if succeed:
            r = conn.execute(sa.select(payment_refunds)
                             .where(payment_refunds.c.id == refund_id)).one()
            assert move_refund(conn, r, "succeeded", "5030" + r.out_refund_no,
                               now).refund_finished
    return r.out_refund_no
