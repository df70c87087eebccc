"""Seats given to an order already paid: a presale application's order (kind ``presale``,
cloud/lottery/) gets its lines and tickets once its winner chose seats or was assigned them.

One transaction does what a sale does, in the order every sale takes its locks: the seats
(held for the order, then sold), the lines (the one-document-per-session index refuses a
second live line of a document), the quotas the lines count against (last), then the tickets
(signed codes and the change log that takes them to the appliances). Nothing is charged: the
order's payment came before the draw, for these tickets at these prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from cloud.core.audit import record
from cloud.inventory.holds import hold_seats, sell_held
from cloud.inventory.quotas import describe, quota_ids, quota_key
from cloud.inventory.seats import InventoryError
from cloud.sales import counts
from cloud.sales.order_plan import OrderError
from cloud.sales.tables import order_lines, orders
from cloud.sales.tickets import Issued, TicketSpec, issue_tickets


@dataclass(frozen=True)
class SeatedLine:
    """One ticket of a paid order: its seat (in ``zone_id``), tier, price and holder."""

    seat_id: int
    zone_id: int
    price_tier_id: int
    amount: int
    currency: str
    holder_id: int | None = None
    holder_hash: str | None = None
    doc_hash: str | None = None  # real-name sessions: one live line per document


def seat_order(conn: sa.Connection, order_id: int, session_id: int,
               lines: list[SeatedLine], now: datetime, actor: str,
               customer: str | None = None) -> tuple[Issued, ...]:
    """Give a paid order these seats and issue its tickets, in the caller's transaction;
    raises ``seat_taken`` / ``seat_not_for_sale`` (a seat not free for ``customer``),
    ``document_already_used`` or ``sold_out`` (a quota), having changed nothing the caller
    keeps once it rolls back."""
    o = conn.execute(sa.select(orders.c.state, orders.c.total).where(
        orders.c.id == order_id).with_for_update()).first()
    if o is None:
        raise OrderError("unknown_order", order_id=order_id, field="order_id")
    if o.state != "paid":
        raise OrderError("order_not_pending", order_id=order_id, state=o.state,
                         field="order_id")
    hold_seats(conn, session_id, [line.seat_id for line in lines], order_id,
               now + timedelta(minutes=1), now, customer)
    sell_held(conn, session_id, order_id)
    keys = {quota_key("zone", session_id, line.zone_id) for line in lines} | {
        quota_key("tier", session_id, price_tier_id=line.price_tier_id) for line in lines}
    found = quota_ids(conn, keys)
    holds = [{"quotas": sorted(found[k] for k in (
        quota_key("zone", session_id, line.zone_id),
        quota_key("tier", session_id, price_tier_id=line.price_tier_id)) if k in found),
        "counts": []} for line in lines]
    rows = [{"order_id": order_id, "kind": "seat", "session_id": session_id,
             "seat_id": line.seat_id, "zone_id": line.zone_id,
             "price_tier_id": line.price_tier_id, "amount": line.amount,
             "currency": line.currency, "holder_id": line.holder_id,
             "holder_hash": line.holder_hash, "doc_hash": line.doc_hash, "state": "issued",
             "holds": h} for line, h in zip(lines, holds, strict=True)]
    try:
        with conn.begin_nested():
            line_ids = conn.execute(sa.insert(order_lines).returning(
                order_lines.c.id, sort_by_parameter_order=True),
                                    rows).scalars().all()
    except sa.exc.IntegrityError:
        raise OrderError("document_already_used", session_id=session_id,
                         field="holder") from None
    deltas = counts.Deltas()
    for h in holds:
        deltas.add_line(h, +1)
    short = counts.write_deltas(conn, deltas, {})
    if short is not None:
        raise InventoryError("sold_out", what=describe(conn, short.quota_id),
                             count=deltas.quotas[short.quota_id], field="seats")
    issued = issue_tickets(conn, [TicketSpec(
        session_id=session_id, seat_id=line.seat_id, zone_id=line.zone_id,
        price_tier_id=line.price_tier_id, order_id=order_id, holder_id=line.holder_id,
        amount=line.amount, currency=line.currency) for line in lines], now, actor)
    conn.execute(sa.update(order_lines).where(order_lines.c.id == sa.bindparam("lid"))
                 .values(ticket_id=sa.bindparam("tid")),
                 [{"lid": lid, "tid": t.id} for lid, t in zip(line_ids, issued, strict=True)])
    record(conn, actor, "order.seated", f"order:{order_id}", None,
           {"seats": [line.seat_id for line in lines], "tickets": len(issued)})
    return tuple(issued)
