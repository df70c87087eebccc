"""Taking and giving back what an order holds: seats, its lines (with the one-document-per-
session index), per-person purchase counts and quotas — in that order, each class of rows in
key order, so that two orders never wait on each other in a circle.

Lazy expiry and tidying. A hold past its order's deadline stops counting at once: the seat
predicates treat it as available (``cloud/inventory/holds.py``). Quota ``used``, purchase
counts and the document index are counters and rows, though, and a lapsed order that nobody
has tidied yet still occupies them. So an order does its own tidying, in its own transaction:

* before it takes anything, it expires the lapsed orders holding the seats it chose or a
  live line of its holders' documents in this session;
* it takes everything inside a savepoint; when a purchase count or a quota has no room, it
  rolls the savepoint back (on PostgreSQL that also lets go of the row locks it took), expires
  the lapsed orders counted there, and tries again (a few rounds);
* what the expired orders give back is not written on its own: it is merged into the
  order's own count and quota statements (``used = used + mine - theirs``), so the hot rows
  are still touched once each, last, in key order.

A lapsed order's seats are left to lazy expiry (another buyer's hold takes them over); the
worker's :func:`cloud.sales.orders.expire_order` puts them back to ``available``. Nothing here
depends on a worker having run.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import sqlalchemy as sa

from cloud.inventory.holds import hold_best, hold_seats, lapsed_orders
from cloud.sales.counts import Deltas, Key, Short
from cloud.sales.order_plan import OrderError, Plan
from cloud.sales.tables import order_lines, order_quotas, orders


def limits_for(plan: Plan, buyer: str | None) -> dict[Key, int]:
    """The purchase counts this order's lines add to, with their limits: per buyer and per
    holder (document hash), per session and per event, where a limit is set."""
    s, e = plan.session, plan.event
    if s is None:
        return {}
    scopes = [(f"s:{s.id}", s.buyer_limit, s.holder_limit),
              (f"e:{e.id}", e.buyer_limit, e.holder_limit)]
    limits = {}
    for scope, buyer_limit, holder_limit in scopes:
        if buyer is not None and buyer_limit is not None:
            limits[(scope, f"b:{buyer}")] = buyer_limit
        if holder_limit is not None:
            for line in plan.lines:
                if line.holder_hash is not None and line.kind != "pass":
                    limits[(scope, f"h:{line.holder_hash}")] = holder_limit
    return limits


def line_holds(plan: Plan, buyer: str | None, limits: dict[Key, int]) -> list[dict]:
    """What each line counts against (the ``holds`` column of its row)."""
    out = []
    for line in plan.lines:
        counts = []
        if line.kind != "pass":
            counts = [[scope, party] for scope, party in limits
                      if party == f"b:{buyer}" or party == f"h:{line.holder_hash}"]
        out.append({"quotas": sorted(plan.quotas[k] for k in line.quota_keys),
                    "counts": sorted(counts)})
    return out


def release_orders(conn: sa.Connection, order_ids: set[int], to_state: str, now: datetime,
                   lapsed_only: bool = True) -> Deltas:
    """Move pending orders (those past their deadline, with ``lapsed_only``) to ``to_state``
    and their held lines to ``released``, in id order; what they gave back, still to be
    written. An order another transaction moved first is skipped (the conditional UPDATE of
    its row decides)."""
    back = Deltas()
    for order_id in sorted(order_ids):
        cond = [orders.c.id == order_id, orders.c.state == "pending_payment"]
        if lapsed_only:
            cond.append(orders.c.expires_at < now)
        if not conn.execute(sa.update(orders).where(*cond).values(state=to_state)).rowcount:
            continue
        for holds in conn.execute(sa.update(order_lines).where(
                order_lines.c.order_id == order_id, order_lines.c.state == "held")
                .values(state="released").returning(order_lines.c.holds)).scalars():
            back.add_line(holds, -1)
    return back


def lapsed_for(conn: sa.Connection, plan: Plan, now: datetime) -> set[int]:
    """The lapsed orders in the way of this plan before it takes anything: holding its chosen
    seats, or a live line of one of its documents in this session."""
    if plan.session is None:
        return set()
    chosen = [line.seat_id for line in plan.lines if line.seat_id is not None]
    found = lapsed_orders(conn, plan.session.id, chosen, now)
    docs = sorted({line.doc_hash for line in plan.lines if line.doc_hash is not None})
    if docs:
        found |= set(conn.execute(sa.select(order_lines.c.order_id).join(
            orders, orders.c.id == order_lines.c.order_id).where(
            order_lines.c.session_id == plan.session.id, order_lines.c.doc_hash.in_(docs),
            order_lines.c.state == "held", orders.c.state == "pending_payment",
            orders.c.expires_at < now)).scalars())
    return found


TIDY_BATCH = 200


def lapsed_in(conn: sa.Connection, short: Short, now: datetime) -> set[int]:
    """Lapsed orders still counted where this order found no room."""
    lapsed = sa.and_(orders.c.state == "pending_payment", orders.c.expires_at < now)
    if short.quota_id is not None:
        q = sa.select(order_quotas.c.order_id).join(
            orders, orders.c.id == order_quotas.c.order_id).where(
            order_quotas.c.quota_id == short.quota_id, lapsed)
    else:
        party = short.count[1]
        if party.startswith("b:"):
            q = sa.select(orders.c.id).where(orders.c.buyer == party[2:], lapsed)
        else:
            q = sa.select(order_lines.c.order_id).join(
                orders, orders.c.id == order_lines.c.order_id).where(
                order_lines.c.holder_hash == party[2:], order_lines.c.state == "held", lapsed)
    return set(conn.execute(q.limit(TIDY_BATCH)).scalars())


def take_seats(conn: sa.Connection, plan: Plan, order_id: int, until: datetime,
               now: datetime, customer: str | None) -> list[int | None]:
    """Hold the plan's seats: the chosen ones in key order, then best-available runs, one per
    zone and tier; the seat of each line (None for general admission and passes)."""
    s = plan.session
    chosen = [line.seat_id for line in plan.lines if line.seat_id is not None]
    if chosen:
        hold_seats(conn, s.id, chosen, order_id, until, now, customer)
    groups: dict[tuple, list[int]] = {}
    for i, line in enumerate(plan.lines):
        if line.kind == "seat" and line.seat_id is None:
            groups.setdefault((line.zone_id, line.price_tier_id), []).append(i)
    seat_of = [line.seat_id for line in plan.lines]
    for (zone_id, _tier), members in sorted(groups.items(), key=lambda g: (g[0][0],
                                                                            g[0][1] or 0)):
        first = plan.lines[members[0]]
        got = hold_best(conn, s.id, zone_id, len(members), order_id, until, now, customer,
                        first.category, frozenset() if first.category else first.priced)
        for i, seat_id in zip(members, sorted(got), strict=True):
            seat_of[i] = seat_id
    return seat_of


_LINES = sa.insert(order_lines)
_ORDER_QUOTAS = sa.insert(order_quotas)


def insert_lines(conn: sa.Connection, order_id: int, plan: Plan, seat_of: list,
                 holder_ids: list, holds: list[dict]) -> None:
    """The order's lines; a second live line of one document in a real-name session is
    refused by the unique index (``document_already_used``), never by a read."""
    rows = [{"order_id": order_id, "kind": line.kind, "session_id": line.session_id,
             "seat_id": seat_id, "zone_id": line.zone_id, "price_tier_id": line.price_tier_id,
             "product_id": line.product_id, "day": line.day, "amount": line.amount,
             "currency": line.currency,
             "holder_id": holder_id, "holder_hash": line.holder_hash,
             "doc_hash": line.doc_hash, "state": "held", "holds": h}
            for line, seat_id, holder_id, h in zip(plan.lines, seat_of, holder_ids, holds,
                                                   strict=True)]
    try:
        conn.execute(_LINES, rows)
    except sa.exc.IntegrityError:
        raise OrderError("document_already_used", session_id=plan.session.id,
                         field="holder") from None
    counted = Counter(q for h in holds for q in h["quotas"])
    if counted:
        conn.execute(_ORDER_QUOTAS, [{"order_id": order_id, "quota_id": q, "n": n}
                                               for q, n in sorted(counted.items())])
