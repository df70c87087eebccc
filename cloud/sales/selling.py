"""Selling a session's tickets: the one path every sale takes (the box office page, the JSON API
and, later, the storefront), so that no way of selling skips a rule.

:func:`sale_problems` says everything that stops a ticket from being sold, changing nothing (a
page shows them beside its fields); :func:`sell` checks the same inside the transaction and
issues the tickets, or raises the first problem.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import price_tiers, sessions, zones
from cloud.core.audit import SYSTEM
from cloud.sales.order_plan import LineRequest, OrderError, OrderRequest
from cloud.sales.orders import Captured, OrderCreated, capture, create_order
from cloud.sales.tickets import Issued, TicketError, TicketSpec, normal_document
from sync.timeutil import utcnow

OFFLINE = "offline"  # the provider of a payment taken at the counter (cash or card)

MAX_HOLDER_NAME = 200


@dataclass(frozen=True)
class _Session:
    id: int
    venue_id: int
    on_sale: bool
    tiers: frozenset[int]
    zones: frozenset[int]

    @classmethod
    def load(cls, conn: sa.Connection, session_id: int) -> _Session:
        s = conn.execute(sa.select(sessions.c.venue_id, sessions.c.on_sale)
                         .where(sessions.c.id == session_id)).first()
        if s is None:
            raise TicketError("unknown_session", session_id=session_id)
        tiers = conn.execute(sa.select(price_tiers.c.id)
                             .where(price_tiers.c.session_id == session_id)).scalars()
        zone_ids = conn.execute(sa.select(zones.c.id)
                                .where(zones.c.venue_id == s.venue_id)).scalars()
        return cls(session_id, s.venue_id, bool(s.on_sale), frozenset(tiers),
                   frozenset(zone_ids))

    def problems(self, spec: TicketSpec) -> list[TicketError]:
        found = []
        if not self.on_sale:
            found.append(TicketError("not_on_sale", session_id=self.id))
        if spec.zone_id and spec.zone_id not in self.zones:
            found.append(TicketError("unknown_zone", zone_id=spec.zone_id))
        if spec.price_tier_id is None and self.tiers:
            found.append(TicketError("tier_required"))
        elif spec.price_tier_id is not None and spec.price_tier_id not in self.tiers:
            found.append(TicketError("tier_not_for_session", tier_id=spec.price_tier_id))
        if spec.holder is not None:
            found += _holder_problems(*spec.holder)
        return found


def _holder_problems(name: str, doc_type: str, number: str) -> list[TicketError]:
    found = []
    if not name.strip():
        found.append(TicketError("holder_name_missing"))
    elif len(name) > MAX_HOLDER_NAME or not name.isprintable():
        found.append(TicketError("holder_name_bad"))
    try:
        normal_document(doc_type, number)
    except TicketError as e:
        found.append(e)
    return found


def sale_problems(conn: sa.Connection, session_id: int, spec: TicketSpec) -> list[TicketError]:
    """Every reason this ticket cannot be sold for this session: not on sale, a zone of another
    venue, a missing or foreign price tier, a bad holder name or document number. (Seats are
    claimed by the sale itself: whether one is still free is known only then.)"""
    try:
        return _Session.load(conn, session_id).problems(spec)
    except TicketError as e:
        return [e]


# How the money of an instant sale is taken, in the sale's transaction: the payments area's
# counter payment (cloud/payments/order_api.py), which records the payment and posts it to
# the ledger with the capture.
Pay = Callable[[sa.Connection, OrderCreated], Captured]


def sell(conn: sa.Connection, session_id: int, specs: list[TicketSpec], actor: str = SYSTEM,
         now: datetime | None = None, *, pay: Pay | None = None) -> list[Issued]:
    """Sell tickets for one session that is on sale at once (the box office's instant sale,
    paid at the counter): each for a seat or general admission of a zone, at the seat's or
    the chosen price, to a named holder or not; all or none, in the caller's transaction.
    It takes the one path every sale takes: an order is created (seats held, quotas and
    limits counted) and paid by ``pay``, whose capture issues the tickets (an order of
    nothing to pay, or without ``pay``, is captured as paid at the counter)."""
    now = now or utcnow()
    session = _Session.load(conn, session_id)
    for spec in specs:
        problems = session.problems(dataclasses.replace(spec, session_id=session_id))
        if problems and problems[0].code != "tier_required":
            raise problems[0]
    customers = {spec.customer for spec in specs if spec.customer}
    order = create_order(conn, OrderRequest(
        session_id, tuple(LineRequest(
            kind="seat" if spec.seat_id is not None else "ga", seat_id=spec.seat_id,
            zone_id=spec.zone_id or 0, price_tier_id=spec.price_tier_id, holder=spec.holder)
            for spec in specs), actor=actor, customer=min(customers) if customers else None),
        now)
    if pay is not None and order.total:
        paid = pay(conn, order)
    else:
        paid = capture(conn, order.order_id, order.total, OFFLINE, f"box-office:{order.number}",
                       now)
    if paid.state != "paid":  # the capture refused it: the whole sale rolls back
        raise OrderError("order_not_pending", order_id=order.number, state=paid.state)
    return list(paid.tickets)
