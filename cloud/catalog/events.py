"""Events and the price tiers of their sessions. (A session itself is created with its seat
configuration: ``cloud/inventory/sessions.py``.)"""

from __future__ import annotations

import sqlalchemy as sa

from cloud.catalog.errors import CatalogError
from cloud.catalog.tables import events, price_tiers
from cloud.core.audit import SYSTEM, record
from cloud.core.db import is_currency


def create_event(conn: sa.Connection, code: str, name: str, actor: str = SYSTEM) -> int:
    if conn.execute(sa.select(events.c.id).where(events.c.code == code)).first():
        raise CatalogError("event_code_taken", code=code)
    event_id = conn.execute(sa.insert(events).values(code=code, name=name)
                            ).inserted_primary_key[0]
    record(conn, actor, "event.create", f"event:{event_id}", None, {"code": code, "name": name})
    return event_id


def add_price_tier(conn: sa.Connection, session_id: int, code: str, name: str, amount: int,
                   currency: str = "CNY", actor: str = SYSTEM) -> int:
    """A price for a session, as an integer amount in the minor unit (fen for CNY)."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise CatalogError("bad_amount", amount=amount)
    if not is_currency(currency):
        raise CatalogError("bad_currency", currency=currency)
    if conn.execute(sa.select(price_tiers.c.id).where(price_tiers.c.session_id == session_id,
                                                      price_tiers.c.code == code)).first():
        raise CatalogError("tier_code_taken", code=code)
    tier_id = conn.execute(sa.insert(price_tiers).values(
        session_id=session_id, code=code, name=name, amount=amount, currency=currency)
    ).inserted_primary_key[0]
    record(conn, actor, "price_tier.create", f"price_tier:{tier_id}", None,
           {"session_id": session_id, "code": code, "amount": amount, "currency": currency})
    return tier_id
