"""The order hub with a scenic spot selling a day product, the channels to sell through, and
a distributor; for the channels' tests (both databases)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from cloud.catalog.tables import product_parts, products
from cloud.catalog.venues import create_venue
from cloud.channels.channels import create_channel
from cloud.channels.tables import contract_customers
from cloud.inventory.quotas import add_quota
from cloud.ledger import chart
from cloud.ledger.tables import partners
from sync.timeutil import CHINA
from tests.cloud.orderkit import NOW, OrderHub, build

TODAY = NOW.astimezone(CHINA).date()


@dataclass
class ChannelHub:
    hub: OrderHub
    spot: int  # the scenic spot's venue
    day_ticket: int  # its day product, 12000 fen
    distributor: int  # a partner
    web: int  # channels
    booth: int

    @property
    def engine(self) -> sa.Engine:
        return self.hub.engine


def add_day_product(conn: sa.Connection, code: str, venue: int, amount: int) -> int:
    return conn.execute(sa.insert(products).values(
        code=code, name=f"Day ticket {code}", kind="day", amount=amount, currency="CNY",
        scope_kind="venues", scope=[venue], daily_limit=1).returning(products.c.id)).scalar_one()


def add_bundle(conn: sa.Connection, code: str, amount: int, parts: dict[int, int]) -> int:
    bundle = conn.execute(sa.insert(products).values(
        code=code, name=f"Bundle {code}", kind="bundle", amount=amount, currency="CNY",
        scope_kind="venues", scope=[0]).returning(products.c.id)).scalar_one()
    conn.execute(sa.insert(product_parts), [{"bundle_id": bundle, "part_id": p, "qty": q}
                                            for p, q in parts.items()])
    return bundle


def stock(conn: sa.Connection, product: int, first: date, days: int, capacity: int) -> None:
    for i in range(days):
        add_quota(conn, "day", capacity, product_id=product, day=first + timedelta(days=i))


def add_partner(conn: sa.Connection, code: str, kind: str = "distributor") -> int:
    partner = conn.execute(sa.insert(partners).values(
        code=code, name=f"Partner {code}", kind=kind, settle_days=0, created_by="t",
        created_at=NOW).returning(partners.c.id)).scalar_one()
    chart.ensure(conn, chart.payable(partner), now=NOW)
    return partner


def add_customer(conn: sa.Connection, code: str) -> int:
    return conn.execute(sa.insert(contract_customers).values(
        code=code, name=f"Customer {code}", created_by="t", created_at=NOW)
        .returning(contract_customers.c.id)).scalar_one()


def channel_hub(url: str) -> ChannelHub:
    hub = build(url)
    with hub.engine.begin() as conn:
        spot = create_venue(conn, "LAKE", "West Lake scenic spot")
        day_ticket = add_day_product(conn, "LAKE-DAY", spot, 12000)
        stock(conn, day_ticket, TODAY, 3, 5)
        distributor = add_partner(conn, "TRAVEL")
        web = create_channel(conn, "web", "Storefront", "storefront", actor="t", now=NOW)
        booth = create_channel(conn, "booth-1", "North booth", "booth", venue_id=hub.venue,
                               actor="t", now=NOW)
    return ChannelHub(hub, spot, day_ticket, distributor, web, booth)


def bind(conn: sa.Connection, partner: int, product: int, supplier: int | None = None) -> None:
    """A sales code of the product bound to the partner."""
    from cloud.channels.tables import sales_code_bindings, sales_codes

    code = conn.execute(sa.insert(sales_codes).values(
        code=f"C{partner}P{product}", product_id=product, supplier_id=supplier or partner,
        name="code", created_by="t", created_at=NOW).returning(sales_codes.c.id)).scalar_one()
    conn.execute(sa.insert(sales_code_bindings).values(
        sales_code_id=code, partner_id=partner, granted_by="t", granted_at=NOW))


def price(conn: sa.Connection, partner: int, amount: int, *, product: int | None = None,
          tier: int | None = None, since=None, until=None) -> None:
    from cloud.channels.tables import agreed_prices

    conn.execute(sa.insert(agreed_prices).values(
        partner_id=partner, product_id=product, price_tier_id=tier, amount=amount,
        effective_from=since or NOW - timedelta(days=30), effective_until=until,
        created_by="t", created_at=NOW))


def distributor(conn: sa.Connection, k: ChannelHub, code: str, prepaid: int,
                amount: int = 10000) -> tuple[int, int]:
    """A distributor with its channel, the day ticket bound at ``amount`` and ``prepaid``
    topped up: (partner, channel)."""
    from cloud.channels.accounts import top_up

    partner = add_partner(conn, code)
    channel = create_channel(conn, f"dist-{code}", f"Distributor {code}", "distributor",
                             partner_id=partner, actor="t", now=NOW)
    bind(conn, partner, k.day_ticket)
    price(conn, partner, amount, product=k.day_ticket)
    if prepaid:
        top_up(conn, partner, prepaid, "CNY", f"bank-{code}", "t", NOW)
    return partner, channel
