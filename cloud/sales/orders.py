"""Orders: created holding their seats and quota until a payment deadline, paid (the
payment captured and the tickets issued in one transaction), expired or cancelled.

An order moves ``pending_payment`` → ``paid`` (→ ``partially_refunded`` → ``refunded``),
or ``pending_payment`` → ``expired`` / ``cancelled``. Every transition is a conditional UPDATE
of the order's row, so whoever moves it first decides, and a second mover changes nothing.
Holding and tidying are in :mod:`cloud.sales.holding` (why a lapsed order needs no worker to
stop counting is told there); checking and pricing in :mod:`cloud.sales.order_plan`.

The payments area calls :func:`capture` and :func:`payable` (payments → sales, never back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cloud.catalog.tables import events, products, sessions
from cloud.core.audit import SYSTEM, audit_values, audited_insert, record
from cloud.core.db import per_dialect
from cloud.inventory.holds import held_by, hold_seats, release_held, sell_held
from cloud.inventory.quotas import describe
from cloud.inventory.seats import InventoryError
from cloud.inventory.sessions import MAX_PAYMENT_MINUTES
from cloud.sales import counts, holding
from cloud.sales.flags import refuse_buying
from cloud.sales.holders import add_holders
from cloud.sales.order_plan import OrderError, OrderRequest, PlannedLine, plan_order
from cloud.sales.tables import TOPUP, order_lines, orders, tickets
from cloud.sales.tickets import Issued, TicketSpec, issue_tickets
from sync import codes, numbers
from sync.timeutil import CHINA, utcnow

PAYMENT_MINUTES = 15  # an order without a session (passes only) is held this long
TIDY_ROUNDS = 4
MAX_TOPUP = 10_000_000_00  # fen: one online top-up of at most ten million yuan


# The job a buyer's paid order writes with its capture (cloud/payments/capturing.py), which
# the buyers area handles (cloud/buyers/delivery.py): the tickets sent to the buyer.
DELIVER_TICKETS_JOB = "buyers.deliver_tickets"
# The job a partner's top-up paid online writes with its capture, which the channels area
# handles (cloud/channels/accounts.py ``topped_up_online``): the warning at its threshold
# re-armed, the top-up audited on the partner's account.
TOPUP_PAID_JOB = "channels.topup_paid"

@dataclass(frozen=True)
class OrderCreated:
    order_id: int
    number: str
    total: int
    currency: str
    expires_at: datetime
    seat_ids: tuple[int | None, ...]  # per line, in the request's order
    lines: tuple[PlannedLine, ...] = ()  # as planned, in the request's order (holders clear)


_COLUMNS = ("number", "session_id", "buyer", "actor", "state", "total", "currency",
            "expires_at", "created_at", "channel_id", "sold_via", "kind")


def _insert_statement(dialect) -> sa.Executable:
    """The order's row, unless its number is taken; on PostgreSQL with its audit row in the
    same statement (a data-modifying WITH, which SQLite lacks)."""
    bound = {c: sa.bindparam(c, type_=orders.c[c].type) for c in _COLUMNS}
    made = dialect.insert(orders).values(bound).on_conflict_do_nothing(
        index_elements=["number"]).returning(orders.c.id)
    if dialect is not postgresql:
        return made
    return audited_insert(made.cte("made"), bound["actor"], "order.create", "order:")


_INSERT = per_dialect(_insert_statement)


def _insert_order(conn: sa.Connection, audit: dict, **values) -> tuple[int, str]:
    """The order's row under a new random number, and its ``order.create`` audit row (what
    ``audit`` says, after the number): one statement on PostgreSQL (a number taken already,
    which is rare, leaves nothing and another is drawn); its id and number."""
    values = {"channel_id": None, "sold_via": None, "kind": "sale", **values}
    while True:
        number = numbers.new_number()
        after = {"number": number, **audit}
        got = conn.execute(_INSERT(conn), {"number": number, **values,
                                           **audit_values(after)}).first()
        if got is not None:
            if conn.dialect.name != "postgresql":
                record(conn, values["actor"], "order.create", f"order:{got.id}", None, after)
            return got.id, number


def create_order(conn: sa.Connection, req: OrderRequest,
                 now: datetime | None = None) -> OrderCreated:
    """Hold an order's seats, lines, purchase counts and quotas in the caller's transaction,
    until its payment deadline (the session's ``payment_minutes``), or raise a coded refusal
    naming its field (``seat_taken``, ``sold_out``, ``not_on_sale``, ``limit_reached``,
    ``document_already_used``, ``buyer_may_not_buy`` by a risk flag, …) having held nothing."""
    now = now or utcnow()
    plan = plan_order(conn, req, now)
    refuse_buying(conn, req.buyer, [line.holder[2] if line.holder else None
                                    for line in plan.lines], now)
    minutes = req.payment_minutes or (plan.session.payment_minutes if plan.session is not None
                                      else PAYMENT_MINUTES)
    if isinstance(minutes, bool) or not isinstance(minutes, int) \
            or not 1 <= minutes <= MAX_PAYMENT_MINUTES:
        raise ValueError(f"payment_minutes is 1 to {MAX_PAYMENT_MINUTES}")  # set by code
    until = now + timedelta(minutes=minutes)
    people = [line.holder for line in plan.lines if line.holder is not None]
    ids = iter(add_holders(conn, people))
    holder_ids = [next(ids) if line.holder is not None else None for line in plan.lines]
    # audited before the seats and quotas are taken: the last statements before the commit
    # are the ones that lock the session's hot rows (its quota counters)
    order_id, number = _insert_order(
        conn, {"lines": len(plan.lines), "total": plan.total, "expires_at": until.isoformat()},
        session_id=plan.session.id if plan.session is not None else None,
        buyer=req.buyer, actor=req.actor, state="pending_payment", total=plan.total,
        currency=plan.currency, expires_at=until, created_at=now, channel_id=req.channel_id,
        sold_via=req.sold_via)
    limits = holding.limits_for(plan, req.buyer)
    holds = holding.line_holds(plan, req.buyer, limits)
    mine = counts.Deltas()
    for h in holds:
        mine.add_line(h, +1)
    back, todo = counts.Deltas(), holding.lapsed_for(conn, plan, now)
    for _ in range(TIDY_ROUNDS):
        back = back.merge(holding.release_orders(conn, todo, "expired", now))
        seat_of, short = _attempt(conn, order_id, plan, req, holder_ids, holds,
                                  mine.merge(back), limits, until, now)
        if short is None:
            break
        todo = holding.lapsed_in(conn, short, now)
        if not todo:
            raise _short_error(conn, short, limits, mine)
    else:
        raise _short_error(conn, short, limits, mine)
    return OrderCreated(order_id, number, plan.total, plan.currency, until, tuple(seat_of),
                        tuple(plan.lines))


def _attempt(conn, order_id, plan, req, holder_ids, holds, deltas, limits, until, now):
    """One try at taking everything: (seats per line, None) when done, (None, what had no
    room) when rolled back for want of room. Inside a savepoint when something can come up
    short (a quota or a purchase count to increase), to be tried again after lapsed holds are
    tidied. A refusal raised leaves the caller's transaction to roll back, as it must anyway:
    the order's row is in it."""
    savepoint = conn.begin_nested() if _can_be_short(deltas) else None
    try:
        seat_of = holding.take_seats(conn, plan, order_id, until, now, req.customer) \
            if plan.session is not None else [None] * len(plan.lines)
        holding.insert_lines(conn, order_id, plan, seat_of, holder_ids, holds)
        short = counts.write_deltas(conn, deltas, limits)
    except BaseException:
        if savepoint is not None:
            savepoint.rollback()
        raise
    if short is not None:
        savepoint.rollback()
        return None, short
    if savepoint is not None:
        savepoint.commit()
    return seat_of, None


def _can_be_short(deltas: counts.Deltas) -> bool:
    return any(n > 0 for n in deltas.quotas.values()) or \
        any(n > 0 for n in deltas.counts.values())


def _short_error(conn: sa.Connection, short: counts.Short, limits: dict,
                 mine: counts.Deltas) -> Exception:
    if short.quota_id is not None:
        return InventoryError("sold_out", what=describe(conn, short.quota_id),
                              count=mine.quotas[short.quota_id], field="lines")
    scope, party = short.count
    per = ("buyer" if party.startswith("b:") else "holder") + (
        " per session" if scope.startswith("s:") else " per event")
    return OrderError("limit_reached", limit=limits[short.count], per=per,
                      field="buyer" if party.startswith("b:") else "holder")


def open_presale_order(conn: sa.Connection, *, session_id: int, buyer: str, actor: str,
                       total: int, currency: str, until: datetime,
                       now: datetime) -> tuple[int, str]:
    """The order that pays a presale application (kind ``presale``): no lines and nothing
    held until the draw gives it seats (:func:`cloud.sales.seating.seat_order`); paid like any
    order, but a payment after its deadline is refused (``application_lapsed``): the place it
    held in the presale was given up. Its id and number."""
    return _insert_order(
        conn, {"kind": "presale", "total": total, "expires_at": until.isoformat()},
        session_id=session_id, buyer=buyer, actor=actor, state="pending_payment",
        total=total, currency=currency, expires_at=until, created_at=now, kind="presale")


def open_topup_order(conn: sa.Connection, *, partner_id: int, actor: str, total: int,
                     currency: str, now: datetime,
                     minutes: int = PAYMENT_MINUTES) -> tuple[int, str]:
    """The order that pays money onto a partner's prepaid balance online (kind ``topup``,
    buyer ``partner:<id>``): no lines, nothing held; paid like any order (a payment after its
    deadline is still taken: nothing of it can have gone to anyone else), and posted to the
    partner's balance instead of split (cloud/ledger/posting.py). Its id and number."""
    if isinstance(total, bool) or not isinstance(total, int) or not 0 < total <= MAX_TOPUP:
        raise OrderError("bad_topup_amount", limit=MAX_TOPUP // 100, field="amount")
    until = now + timedelta(minutes=minutes)
    return _insert_order(
        conn, {"kind": TOPUP, "total": total, "expires_at": until.isoformat()},
        session_id=None, buyer=f"partner:{partner_id}", actor=actor, state="pending_payment",
        total=total, currency=currency, expires_at=until, created_at=now, kind=TOPUP)


def topup_partner(buyer: str) -> int:
    """The partner whose balance a top-up order (its ``buyer``, ``partner:<id>``) tops up."""
    return int(buyer.removeprefix("partner:"))


@dataclass(frozen=True)
class Captured:
    """What a payment did: ``paid`` with its tickets (``duplicate`` when this payment was
    recorded before and nothing changed), or ``refund_needed`` with the ``reason`` the money
    must go back (``already_paid``, ``cancelled``, ``amount_mismatch``, ``seats_gone``,
    ``limit_reached``: a late payment over a per-person limit, ``application_lapsed``)."""

    order_id: int
    state: str
    tickets: tuple[Issued, ...] = ()
    refund_needed: bool = False
    reason: str | None = None
    duplicate: bool = False
    buyer: str | None = None  # the order's, when this payment paid it
    kind: str | None = None


@dataclass(frozen=True)
class Payable:
    order_id: int
    number: str
    amount: int
    currency: str
    state: str
    expires_at: datetime
    description: str


def _tickets_of(conn: sa.Connection, order_id: int) -> tuple[Issued, ...]:
    return tuple(Issued(r.id, r.number, r.code) for r in conn.execute(
        sa.select(tickets.c.id, tickets.c.number, tickets.c.code)
        .where(tickets.c.order_id == order_id).order_by(tickets.c.id)))


_ORDER = sa.select(orders).where(orders.c.id == sa.bindparam("order_id"))
_ORDER_LOCKED = _ORDER.with_for_update()
_SEEN = sa.select(orders.c.id, orders.c.state).where(
    orders.c.payment_provider == sa.bindparam("provider"),
    orders.c.payment_reference == sa.bindparam("reference"))
_LINES = sa.select(order_lines).where(order_lines.c.order_id == sa.bindparam("order_id")
                                      ).order_by(order_lines.c.id)
_LINE_ISSUED = sa.update(order_lines).where(order_lines.c.id == sa.bindparam("lid")).values(
    state="issued", ticket_id=sa.bindparam("tid"))
_PAID = sa.update(orders).where(orders.c.id == sa.bindparam("oid"))


def capture(conn: sa.Connection, order_id: int, amount: int, provider: str, reference: str,
            now: datetime | None = None) -> Captured:
    """Record a payment of an order and issue its tickets, in the caller's transaction.

    Idempotent by (provider, reference): a payment recorded before changes nothing and
    answers as it did. A payment for an order past its deadline re-holds the order's seats
    and quota if they are still free and pays it; otherwise, as for a cancelled order, a
    paid one paid again, or a wrong amount, nothing changes and the answer says the money
    must go back (``refund_needed``)."""
    now = now or utcnow()
    seen = conn.execute(_SEEN, {"provider": provider, "reference": reference}).first()
    if seen is not None:
        return Captured(seen.id, seen.state, _tickets_of(conn, seen.id), duplicate=True)
    o = conn.execute(_ORDER_LOCKED, {"order_id": order_id}).first()
    if o is None:
        raise OrderError("unknown_order", order_id=order_id, field="order_id")
    if (o.payment_provider, o.payment_reference) == (provider, reference):
        # the same payment, recorded by a capture this one waited for
        return Captured(o.id, o.state, _tickets_of(conn, o.id), duplicate=True)
    refusal = {"paid": "already_paid", "partially_refunded": "already_paid",
               "refunded": "already_paid", "cancelled": "cancelled"}.get(o.state)
    if refusal is None and amount != o.total:
        refusal = "amount_mismatch"
    if refusal is None and o.kind == "presale" and (o.state == "expired" or
                                                    o.expires_at < now):
        # an application's place was given up when its payment lapsed: it is not taken back
        refusal = "application_lapsed"
    if refusal is None and (o.state == "expired" or o.expires_at < now):
        refusal = _hold_again(conn, o, now)
    if refusal is not None:
        return Captured(o.id, o.state, refund_needed=True, reason=refusal)
    savepoint = conn.begin_nested()
    issued = _pay(conn, o, provider, reference, now)
    if issued is None:  # a seat of it went to another order as this payment came (lapsed)
        savepoint.rollback()
        _give_back(conn, o.id, "expired", now, lapsed_only=False)
        return Captured(o.id, "expired", refund_needed=True, reason="seats_gone")
    savepoint.commit()
    return Captured(o.id, "paid", issued, buyer=o.buyer, kind=o.kind)


def _hold_again(conn: sa.Connection, o, now: datetime) -> str | None:
    """None when a lapsed order still has (or gets back) everything it held: its seats, its
    documents' places, its purchase counts within the limits in force now and its quotas;
    else why not (``seats_gone``, ``limit_reached``), nothing changed but the order tidied
    (expired)."""
    lines = conn.execute(sa.select(order_lines).where(order_lines.c.order_id == o.id)).all()
    seats = [r.seat_id for r in lines if r.seat_id is not None]
    if o.state == "pending_payment":
        if o.session_id is None or held_by(conn, o.session_id, o.id) >= set(seats):
            return None  # nobody has taken anything of it: it is paid as it stands
        expire_order(conn, o.id, now)
        return "seats_gone"
    savepoint = conn.begin_nested()
    try:
        if seats:
            hold_seats(conn, o.session_id, seats, o.id, now + timedelta(minutes=1), now)
        conn.execute(sa.update(order_lines).where(order_lines.c.order_id == o.id,
                                                  order_lines.c.state == "released")
                     .values(state="held"))
        again = counts.Deltas()
        for r in lines:
            again.add_line(r.holds, +1)
        short = counts.write_deltas(conn, again, _limits_now(conn, again.counts))
        if short is not None:
            savepoint.rollback()
            return "limit_reached" if short.count is not None else "seats_gone"
        conn.execute(sa.update(orders).where(orders.c.id == o.id)
                     .values(state="pending_payment"))
    except (sa.exc.IntegrityError, InventoryError, OrderError):
        savepoint.rollback()
        return "seats_gone"
    savepoint.commit()
    return None


def _limits_now(conn: sa.Connection, keys) -> dict[counts.Key, int]:
    """The limits in force now of these purchase counts (``s:<session>`` / ``e:<event>`` ×
    ``b:<buyer>`` / ``h:<holder>``): a lapsed order paid late is held to them again, as a new
    order would be (a count whose limit was lifted is not limited)."""
    ids = {"s": set(), "e": set()}
    for scope, _party in keys:
        ids[scope[0]].add(int(scope[2:]))
    rows = {}
    for kind, table in (("s", sessions), ("e", events)):
        if ids[kind]:
            for r in conn.execute(sa.select(table.c.id, table.c.buyer_limit,
                                            table.c.holder_limit)
                                  .where(table.c.id.in_(ids[kind]))):
                rows[f"{kind}:{r.id}"] = r
    out = {}
    for scope, party in keys:
        r = rows.get(scope)
        limit = None if r is None else (r.buyer_limit if party.startswith("b:")
                                        else r.holder_limit)
        out[(scope, party)] = 10**9 if limit is None else limit
    return out


def _pay(conn: sa.Connection, o, provider: str, reference: str,
         now: datetime) -> tuple[Issued, ...] | None:
    """Sell the order's held seats and issue its tickets; None when a seat is no longer held
    by it (the caller rolls back)."""
    lines = conn.execute(_LINES, {"order_id": o.id}).all()
    seats = sum(1 for r in lines if r.seat_id is not None)
    if o.session_id is not None and sell_held(conn, o.session_id, o.id) != seats:
        return None
    issued = issue_tickets(conn, [_spec(conn, o, r) for r in lines], now, o.actor) \
        if lines else []  # a presale application's order: its tickets come with its seats
    if issued:
        conn.execute(_LINE_ISSUED, [{"lid": r.id, "tid": t.id}
                                    for r, t in zip(lines, issued, strict=True)])
    conn.execute(_PAID, {"oid": o.id, "state": "paid", "paid_at": now,
                         "payment_provider": provider, "payment_reference": reference})
    record(conn, o.actor, "order.paid", f"order:{o.id}", {"state": o.state},
           {"state": "paid", "provider": provider, "tickets": len(issued)})
    return tuple(issued)


def _spec(conn: sa.Connection, o, line) -> TicketSpec:
    if line.kind == "pass":
        p = conn.execute(sa.select(products).where(products.c.id == line.product_id)).one()
        kind = codes.Kind.SESSIONS if p.scope_kind == "sessions" else codes.Kind.VENUES
        valid_from, valid_until = p.valid_from, p.valid_until
        if line.day is not None:  # a day product admits on its day, China time
            valid_from = datetime.combine(line.day, time(), CHINA).astimezone(UTC)
            valid_until = valid_from + timedelta(days=1)
        return TicketSpec(kind=kind, scope=tuple(p.scope), zone_id=p.zone_id,
                          valid_from=valid_from, valid_until=valid_until,
                          daily_limit=p.daily_limit, order_id=o.id, holder_id=line.holder_id,
                          amount=line.amount, currency=line.currency)
    return TicketSpec(session_id=line.session_id, seat_id=line.seat_id, zone_id=line.zone_id,
                      price_tier_id=line.price_tier_id, order_id=o.id,
                      holder_id=line.holder_id, amount=line.amount, currency=line.currency)


def shown_state(o, now: datetime | None = None) -> str:
    """An order's state as it is told: a pending order past its deadline is ``expired``
    (lazy expiry), whether tidied or not."""
    if o.state == "pending_payment" and o.expires_at < (now or utcnow()):
        return "expired"
    return o.state


def _payable_statement(where: sa.ColumnElement[bool]) -> sa.Select:
    """The order with its lines' count and its session's and event's names, in one
    statement."""
    return sa.select(
        orders,
        sa.select(sa.func.count()).select_from(order_lines).where(
            order_lines.c.order_id == orders.c.id).scalar_subquery().label("line_count"),
        sessions.c.name.label("session_name"), events.c.name.label("event_name"),
    ).select_from(orders.outerjoin(sessions, sessions.c.id == orders.c.session_id)
                  .outerjoin(events, events.c.id == sessions.c.event_id)).where(where)


_PAYABLE = _payable_statement(orders.c.id == sa.bindparam("order_id"))
_PAYABLE_BY_NUMBER = _payable_statement(orders.c.number == sa.bindparam("number"))


def payable(conn: sa.Connection, order_id: int, now: datetime | None = None) -> Payable:
    """What a payment provider is asked to collect for an order. A pending order past its
    deadline answers ``expired`` (lazy expiry), whether tidied or not."""
    o = conn.execute(_PAYABLE, {"order_id": order_id}).first()
    if o is None:
        raise OrderError("unknown_order", order_id=order_id, field="order_id")
    return _payable(o, now)


def payable_by_number(conn: sa.Connection, number: str,
                      now: datetime | None = None) -> Payable:
    """:func:`payable` for the order that has this number (``unknown_order`` naming the
    field ``number``)."""
    o = conn.execute(_PAYABLE_BY_NUMBER, {"number": number}).first()
    if o is None:
        raise OrderError("unknown_order", order_id=number, field="number")
    return _payable(o, now)


def _payable(o: sa.Row, now: datetime | None) -> Payable:
    state = shown_state(o, now)
    lines = o.line_count
    what = "passes"
    if o.kind == TOPUP:
        return Payable(o.id, o.number, o.total, o.currency, state, o.expires_at,
                       f"Prepaid balance top-up (order {o.number})")
    if o.session_id is not None:
        what = f"{o.event_name} — {o.session_name}"
    return Payable(o.id, o.number, o.total, o.currency, state, o.expires_at,
                   f"{what}: {lines} ticket{'s' if lines != 1 else ''} (order {o.number})")


def _give_back(conn: sa.Connection, order_id: int, to_state: str, now: datetime,
               lapsed_only: bool) -> bool:
    """Move the order and give back what it held: seats before counts and quotas, the order
    every sale takes its locks in."""
    back = holding.release_orders(conn, {order_id}, to_state, now, lapsed_only)
    if conn.execute(sa.select(orders.c.state).where(orders.c.id == order_id)
                    ).scalar() != to_state:
        return False
    release_held(conn, order_id)
    counts.write_deltas(conn, back, {})
    return True


def expire_order(conn: sa.Connection, order_id: int, now: datetime | None = None) -> bool:
    """Tidy an order past its payment deadline: it becomes ``expired``, its seats go back on
    sale, its quotas and purchase counts are given back. Safe to repeat (an order already
    expired only has any seat it still names released); True when it is (now) expired.
    An order still in time, or paid, is left alone (False)."""
    now = now or utcnow()
    expired = _give_back(conn, order_id, "expired", now, lapsed_only=True)
    if expired:
        record(conn, SYSTEM, "order.expire", f"order:{order_id}", None, {"state": "expired"})
    return expired


def cancel_order(conn: sa.Connection, order_id: int, actor: str = SYSTEM,
                 now: datetime | None = None) -> None:
    """Cancel an order waiting for payment (the buyer's or a clerk's choice): its seats,
    quotas and purchase counts are given back at once. A paid order is refunded, not
    cancelled (``order_not_pending``)."""
    now = now or utcnow()
    state = conn.execute(sa.select(orders.c.state).where(orders.c.id == order_id)
                         .with_for_update()).scalar()
    if state is None:
        raise OrderError("unknown_order", order_id=order_id, field="order_id")
    if state != "pending_payment":
        raise OrderError("order_not_pending", order_id=order_id, state=state, field="order_id")
    _give_back(conn, order_id, "cancelled", now, lapsed_only=False)
    record(conn, actor, "order.cancel", f"order:{order_id}", {"state": state},
           {"state": "cancelled"})


def refunded_whole(conn: sa.Connection, order_id: int) -> bool:
    """A paid order without tickets whose whole payment went back (a presale application not
    drawn) becomes ``refunded``; True when it moved."""
    live = sa.select(order_lines.c.id).where(order_lines.c.order_id == order_id,
                                             order_lines.c.state.in_(("held", "issued")))
    return conn.execute(sa.update(orders).where(
        orders.c.id == order_id, orders.c.state == "paid", ~live.exists())
        .values(state="refunded")).rowcount == 1


def expire_lapsed_orders(conn: sa.Connection, now: datetime | None = None,
                         limit: int = 100) -> int:
    """One batch of the worker's tidying: lapsed orders, taken with ``SKIP LOCKED`` on
    PostgreSQL so several workers share them; how many were expired."""
    now = now or utcnow()
    q = sa.select(orders.c.id).where(orders.c.state == "pending_payment",
                                     orders.c.expires_at < now).order_by(orders.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return sum(expire_order(conn, order_id, now) for order_id in conn.execute(q).scalars())
