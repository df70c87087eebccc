"""Events (with their per-buyer and per-holder limits) and the price tiers of their sessions. (A session itself is created with its seat
configuration: ``cloud/inventory/sessions.py``.)"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.errors import CatalogError
from cloud.catalog.tables import events, price_tiers
from cloud.core.audit import SYSTEM, record
from cloud.core.db import is_currency


def create_event(conn: sa.Connection, code: str, name: str, actor: str = SYSTEM, *,
                 discipline: str | None = None) -> int:
    """An event; ``discipline`` (what is played or shown, at most 40 characters) is what the
    public site's search offers."""
    discipline = (discipline or "").strip() or None
    if discipline is not None and len(discipline) > 40:
        raise CatalogError("bad_discipline", limit=40)
    if conn.execute(sa.select(events.c.id).where(events.c.code == code)).first():
        raise CatalogError("event_code_taken", code=code)
    # the discipline only when named: migration tests make events on older schemas
    named = {"discipline": discipline} if discipline is not None else {}
    event_id = conn.execute(sa.insert(events).values(code=code, name=name, **named)
                            ).inserted_primary_key[0]
    record(conn, actor, "event.create", f"event:{event_id}", None,
           {"code": code, "name": name, "discipline": discipline})
    return event_id


def add_price_tier(conn: sa.Connection, session_id: int, code: str, name: str, amount: int,
                   currency: str = "CNY", actor: str = SYSTEM, *,
                   seat_category: str | None = None, sale_opens_at: datetime | None = None,
                   sale_closes_at: datetime | None = None) -> int:
    """A price for a session, as an integer amount in the minor unit (fen for CNY). A tier
    naming a ``seat_category`` (the venue map's ``seats.category``) is the price of every seat
    of that category, and of nothing else; one tier per category and session. A tier may have
    its own sale window inside the session's."""
    check_amount(amount, currency)
    check_window(sale_opens_at, sale_closes_at)
    if conn.execute(sa.select(price_tiers.c.id).where(price_tiers.c.session_id == session_id,
                                                      price_tiers.c.code == code)).first():
        raise CatalogError("tier_code_taken", code=code)
    if seat_category is not None and conn.execute(sa.select(price_tiers.c.id).where(
            price_tiers.c.session_id == session_id,
            price_tiers.c.seat_category == seat_category)).first():
        raise CatalogError("category_priced", category=seat_category)
    tier_id = conn.execute(sa.insert(price_tiers).values(
        session_id=session_id, code=code, name=name, amount=amount, currency=currency,
        seat_category=seat_category, sale_opens_at=sale_opens_at,
        sale_closes_at=sale_closes_at)).inserted_primary_key[0]
    record(conn, actor, "price_tier.create", f"price_tier:{tier_id}", None,
           {"session_id": session_id, "code": code, "amount": amount, "currency": currency,
            "seat_category": seat_category})
    return tier_id


def check_amount(amount: int, currency: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise CatalogError("bad_amount", amount=amount)
    if not is_currency(currency):
        raise CatalogError("bad_currency", currency=currency)


def check_window(opens: datetime | None, closes: datetime | None) -> None:
    if opens is not None and closes is not None and closes <= opens:
        raise CatalogError("bad_window")


def set_event_limits(conn: sa.Connection, event_id: int, buyer_limit: int | None,
                     holder_limit: int | None, actor: str = SYSTEM) -> None:
    """How many tickets one buyer, and one holder (by document), may have across the event's
    sessions (None: no limit). Audited."""
    for field, value in (("buyer_limit", buyer_limit), ("holder_limit", holder_limit)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise CatalogError("bad_event_limit", field=field)
    before = conn.execute(sa.select(events.c.buyer_limit, events.c.holder_limit)
                          .where(events.c.id == event_id)).first()
    if before is None:
        raise CatalogError("unknown_event", event_id=event_id)
    conn.execute(sa.update(events).where(events.c.id == event_id)
                 .values(buyer_limit=buyer_limit, holder_limit=holder_limit))
    record(conn, actor, "event.limits", f"event:{event_id}", dict(before._mapping),
           {"buyer_limit": buyer_limit, "holder_limit": holder_limit})
