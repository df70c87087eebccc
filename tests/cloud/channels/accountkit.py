"""A hub for the account tests: the ledger's hub (an organiser taking the rest, a venue 10 %
and one yuan a ticket, the platform 5 %) with a distributor, orders of one standard seat
(380 yuan) held for it, and a second session so that there are seats for twenty orders."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from cloud.catalog.events import add_price_tier
from cloud.catalog.tables import price_tiers
from cloud.channels.partner_terms import contact_context
from cloud.channels.tables import partner_profiles
from cloud.core.seal import keyring_for
from cloud.inventory import seats as inventory
from cloud.inventory.sessions import create_session
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import create_order
from tests.cloud.ledger.ledgerkit import add_partner, ledger_hub
from tests.cloud.orderkit import NOW, START, OrderHub

DISTRIBUTOR = 3
PRICE = 38000


def account_hub(url: str) -> tuple[OrderHub, int]:
    """The hub and its second session (standard seats at 380 yuan)."""
    hub = ledger_hub(url)
    with hub.engine.begin() as conn:
        add_partner(conn, DISTRIBUTOR, "distributor")
        second = create_session(conn, hub.event, hub.venue, "Second", START + timedelta(days=1),
                                START + timedelta(days=1, hours=3))
        add_price_tier(conn, second, "VIP2", "VIP", PRICE, seat_category="vip")
        add_price_tier(conn, second, "STD2", "Standard", PRICE, seat_category="std")
        inventory.confirm_configuration(conn, second)
        inventory.put_on_sale(conn, second)
    return hub, second


def partner_orders(hub: OrderHub, second: int, n: int) -> list[int]:
    """``n`` (up to twenty) orders of one standard seat each (380 yuan), held."""
    ids = []
    with hub.engine.begin() as conn:
        std2 = conn.execute(sa.select(price_tiers.c.id).where(
            price_tiers.c.session_id == second, price_tiers.c.code == "STD2")).scalar_one()
        for k in range(n):
            session, tier = (hub.session, hub.std) if k < 10 else (second, std2)
            zone = hub.zones["A" if k % 10 < 6 else "B"]
            req = OrderRequest(session, (LineRequest(zone_id=zone, price_tier_id=tier),),
                               buyer=f"partner:{DISTRIBUTOR}:{k}")
            ids.append(create_order(conn, req, NOW).order_id)
    return ids


def profile(conn: sa.Connection, partner_id: int, warn_below: int = 0,
            contact: str | None = None) -> None:
    """The partner's profile as the profiles' pages write it: the contact sealed."""
    conn.execute(sa.insert(partner_profiles).values(
        partner_id=partner_id, warn_below=warn_below, updated_by="t", updated_at=NOW,
        sealed_contact=None if contact is None else keyring_for(conn).seal(
            contact, contact_context(partner_id))))
