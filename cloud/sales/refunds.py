"""Refunds of paid orders, ticket by ticket: a session's refund policy (until when, and the fee
kept per ticket), a request by one person (the maker), a decision by another (the checker),
and the end once the money has gone back.

- A request names tickets of a paid order; each ticket is in at most one live request (a
  unique key on ``refund_request_lines.active_ticket_id``: two requests racing for one ticket
  cannot both be made). Its amount is the lines' prices less the policy's fee, in fen.
- Approving is one conditional UPDATE from ``pending`` (two approvals racing: one wins, the
  other is refused ``refund_not_pending``) by someone other than the maker
  (``maker_cannot_approve``; a CHECK stands behind it). It revokes the tickets at once (their
  codes stop at every venue; a ticket that has admitted someone needs the approver, a
  supervisor, to give a reason: :func:`cloud.sales.tickets.revoke_ticket`), but their seats
  and quota return to sale only when the money has gone back (:func:`refund_ended`).
- The money is the payments area's: it reserves the amount on the order's payment in the
  approval's transaction and tells this module how the refund ended
  (cloud/payments/refund_approval.py). A refund that fails leaves the request ``failed`` and
  its tickets revoked, their seats still out of sale: the money is owed, and ops settle it
  (a new request cannot name those tickets: they are no longer live).

Nothing here imports Flask or the payments area (which sits above sales).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import sessions
from cloud.core.audit import SYSTEM, find_audit, record
from cloud.core.errors import Code, HubError
from cloud.sales.flags import refuse_refund
from cloud.sales.tables import (
    order_lines,
    orders,
    refund_policies,
    refund_request_lines,
    refund_requests,
    tickets,
)
from cloud.sales.tickets import admissions, give_back_ticket, revoke_ticket
from sync.timeutil import to_iso, utcnow

MAX_REASON = 200
MIN_NOTE, MAX_NOTE = 4, 200
REFUNDABLE_ORDER_STATES = ("paid", "partially_refunded")
# who approves the refunds of a cancelled session: never a person, so never the maker
BULK_CHECKER = "system:session-cancelled"


class RefundError(HubError):
    """A refund policy, request or decision the rules refuse."""

    codes = {
        "bad_refund_policy": Code(422, "a refund fee is none, a whole percent from 0 to 100, "
                                       "or a whole number of fen"),
        "unknown_refund_request": Code(404, "no refund request %(request_id)s"),
        "order_not_refundable": Code(409, "order %(order_id)s is %(state)s: only a paid order "
                                          "is refunded"),
        "no_tickets_chosen": Code(422, "choose at least one ticket of the order to refund"),
        "ticket_not_in_order": Code(422, "ticket %(ticket)s is not a live ticket of order "
                                         "%(order_id)s"),
        "refund_already_requested": Code(409, "ticket %(ticket)s is in another refund "
                                              "request already"),
        "refund_window_closed": Code(409, "refunds for session %(session_id)s closed at "
                                          "%(until)s"),
        "refund_reason_too_long": Code(422, "a refund's reason is at most %(high)s "
                                            "characters"),
        "refund_not_pending": Code(409, "refund request %(request_id)s is %(state)s, not "
                                        "pending"),
        "maker_cannot_approve": Code(409, "refund request %(request_id)s was asked for by "
                                          "%(maker)s: another person decides it"),
        "decision_note_required": Code(422, "say why the refund is rejected (%(low)s to "
                                            "%(high)s characters)"),
        "refund_not_failed": Code(409, "refund request %(request_id)s is %(state)s: only a "
                                       "failed refund is sent again"),
        "session_not_cancelled": Code(409, "session %(session_id)s is not cancelled"),
        "bulk_refund_incomplete": Code(409, "%(failed)s orders of session %(session_id)s "
                                            "could not be refunded: %(codes)s"),
    }


@dataclass(frozen=True)
class Policy:
    session_id: int
    refundable_until: datetime      # the policy's, else the session's start
    fee_kind: str                   # none | percent | fixed
    fee_value: int                  # percent, or fen per ticket
    explicit: bool                  # a row says so (else the default: in full until start)
    postponed: bool = False         # the session moved: in full until its new start

    def fee(self, amount: int) -> int:
        """The fee kept of a ticket priced ``amount`` fen (never more than its price)."""
        if self.fee_kind == "percent":
            return amount * self.fee_value // 100
        if self.fee_kind == "fixed":
            return min(self.fee_value, amount)
        return 0


def policy(conn: sa.Connection, session_id: int, *, effective: bool = True) -> Policy:
    """The session's refund policy as it applies now (``effective``): a postponed session's
    buyers did not agree to its new time, so its tickets are refunded in full, with no fee,
    until it starts (they keep them for the new time otherwise), whatever the policy set
    says; ``effective=False`` gives the policy as set."""
    s = conn.execute(sa.select(sessions.c.starts_at, sessions.c.state)
                     .where(sessions.c.id == session_id)).first()
    if s is None:
        raise RefundError("bad_refund_policy")
    row = conn.execute(sa.select(refund_policies)
                       .where(refund_policies.c.session_id == session_id)).first()
    if row is None:
        p = Policy(session_id, s.starts_at, "none", 0, False)
    else:
        p = Policy(session_id, row.refundable_until or s.starts_at, row.fee_kind,
                   row.fee_value, True)
    if effective and s.state == "postponed":
        return replace(p, refundable_until=max(p.refundable_until, s.starts_at),
                       fee_kind="none", fee_value=0, postponed=True)
    return p


def set_policy(conn: sa.Connection, session_id: int, refundable_until: datetime | None,
               fee_kind: str, fee_value: int, actor: str,
               now: datetime | None = None) -> Policy:
    """Set a session's refund policy (``refundable_until`` None: until the session starts).
    Audited with what it was before."""
    now = now or utcnow()
    if (fee_kind not in ("none", "percent", "fixed") or isinstance(fee_value, bool)
            or not isinstance(fee_value, int) or fee_value < 0
            or (fee_kind == "percent" and fee_value > 100)
            or (fee_kind == "none" and fee_value != 0)):
        raise RefundError("bad_refund_policy")
    before = policy(conn, session_id, effective=False)
    values = {"refundable_until": refundable_until, "fee_kind": fee_kind,
              "fee_value": fee_value, "updated_at": now, "updated_by": actor}
    if before.explicit:
        conn.execute(sa.update(refund_policies)
                     .where(refund_policies.c.session_id == session_id).values(**values))
    else:
        conn.execute(sa.insert(refund_policies).values(session_id=session_id, **values))
    record(conn, actor, "refund_policy.set", f"session:{session_id}",
           _policy_audit(before) if before.explicit else None,
           {"refundable_until": to_iso(refundable_until) if refundable_until else None,
            "fee_kind": fee_kind, "fee_value": fee_value})
    return policy(conn, session_id, effective=False)


def _policy_audit(p: Policy) -> dict:
    return {"refundable_until": to_iso(p.refundable_until), "fee_kind": p.fee_kind,
            "fee_value": p.fee_value}


@dataclass(frozen=True)
class QuoteLine:
    ticket_id: int
    number: str
    order_line_id: int
    price: int
    fee: int
    admitted: int        # admissions the appliances reported: approval needs a reason


@dataclass(frozen=True)
class Quote:
    order_id: int
    session_id: int
    currency: str
    lines: tuple[QuoteLine, ...]
    policy: Policy

    @property
    def gross(self) -> int:
        return sum(line.price for line in self.lines)

    @property
    def fee(self) -> int:
        return sum(line.fee for line in self.lines)

    @property
    def amount(self) -> int:
        return self.gross - self.fee


def refundable_tickets(conn: sa.Connection, order_id: int) -> list[sa.Row]:
    """The order's live tickets with their lines, and whether a live request names them."""
    return conn.execute(
        sa.select(tickets.c.id, tickets.c.number, order_lines.c.id.label("line_id"),
                  order_lines.c.amount, order_lines.c.seat_id,
                  refund_request_lines.c.request_id)
        .join(order_lines, order_lines.c.ticket_id == tickets.c.id)
        .outerjoin(refund_request_lines,
                   refund_request_lines.c.active_ticket_id == tickets.c.id)
        .where(tickets.c.order_id == order_id, tickets.c.state == "issued",
               order_lines.c.state == "issued")
        .order_by(tickets.c.id)).all()


def quote(conn: sa.Connection, order_id: int, ticket_ids: list[int] | None,
          now: datetime | None = None, *, bulk: bool = False) -> Quote:
    """What refunding these tickets of the order gives back (``None``: all its live tickets),
    or the reason it cannot be asked for (a live ``refunds`` risk flag on the buyer or a
    holder among them). A bulk refund (a cancelled session) ignores the policy's window and
    fee, and the flags: the buyer gets what was paid."""
    now = now or utcnow()
    o = conn.execute(sa.select(orders).where(orders.c.id == order_id)).first()
    if o is None:
        raise RefundError("order_not_refundable", order_id=order_id, state="unknown")
    if o.state not in REFUNDABLE_ORDER_STATES:
        raise RefundError("order_not_refundable", order_id=o.number, state=o.state)
    live = {t.id: t for t in refundable_tickets(conn, order_id)}
    chosen = sorted(live) if ticket_ids is None else sorted(set(ticket_ids))
    if not chosen:
        raise RefundError("no_tickets_chosen")
    for tid in chosen:
        if tid not in live:
            raise RefundError("ticket_not_in_order", ticket=tid, order_id=o.number)
        if live[tid].request_id is not None:
            raise RefundError("refund_already_requested", ticket=live[tid].number)
    if not bulk:  # a cancelled session's money is owed whoever holds its tickets
        refuse_refund(conn, order_id, chosen, now)
    p = policy(conn, o.session_id)
    if not bulk and now > p.refundable_until:
        raise RefundError("refund_window_closed", session_id=o.session_id,
                          until=to_iso(p.refundable_until))
    lines = tuple(QuoteLine(tid, live[tid].number, live[tid].line_id, live[tid].amount,
                            0 if bulk else p.fee(live[tid].amount), admissions(conn, tid))
                  for tid in chosen)
    return Quote(order_id, o.session_id, o.currency, lines, p)


def request_refund(conn: sa.Connection, order_id: int, ticket_ids: list[int] | None,
                   actor: str, reason: str = "", now: datetime | None = None, *,
                   bulk: bool = False) -> int:
    """Ask for a refund of tickets of a paid order (the maker is ``actor``); the request's
    id. The order's row is locked first, so requests for one order are made one at a time;
    the unique key on the tickets stands behind that. A live ``refunds`` risk flag on the
    order's buyer or a ticket's holder refuses it (``buyer_refunds_blocked``,
    ``holder_refunds_blocked``), except the bulk
    refund of a cancelled session."""
    now = now or utcnow()
    why = " ".join(reason.split())
    if len(why) > MAX_REASON:
        raise RefundError("refund_reason_too_long", high=MAX_REASON)
    conn.execute(sa.select(orders.c.id).where(orders.c.id == order_id).with_for_update())
    q = quote(conn, order_id, ticket_ids, now, bulk=bulk)
    try:
        with conn.begin_nested():
            rid = conn.execute(sa.insert(refund_requests).values(
                order_id=order_id, state="pending", gross=q.gross, fee=q.fee, amount=q.amount,
                currency=q.currency, reason=why, maker=actor, bulk=bulk, created_at=now)
                .returning(refund_requests.c.id)).scalar_one()
            conn.execute(sa.insert(refund_request_lines), [
                {"request_id": rid, "order_line_id": line.order_line_id,
                 "ticket_id": line.ticket_id, "active_ticket_id": line.ticket_id,
                 "amount": line.price, "fee": line.fee} for line in q.lines])
    except sa.exc.IntegrityError:
        raise RefundError("refund_already_requested",
                          ticket=", ".join(line.number for line in q.lines)) from None
    record(conn, actor, "refund.request", f"order:{order_id}", None,
           {"request_id": rid, "tickets": [line.number for line in q.lines], "gross": q.gross,
            "fee": q.fee, "amount": q.amount, "bulk": bulk, "reason": why})
    return rid


@dataclass(frozen=True)
class Approved:
    """What the payments area needs to give the money back."""

    request_id: int
    order_id: int
    amount: int
    currency: str
    payment_provider: str | None
    payment_reference: str | None


def refund_request(conn: sa.Connection, request_id: int, lock: bool = False) -> sa.Row:
    q = sa.select(refund_requests).where(refund_requests.c.id == request_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise RefundError("unknown_refund_request", request_id=request_id)
    return row


def request_lines(conn: sa.Connection, request_id: int) -> list[sa.Row]:
    return conn.execute(
        sa.select(refund_request_lines, tickets.c.number, tickets.c.state.label("ticket_state"))
        .join(tickets, tickets.c.id == refund_request_lines.c.ticket_id)
        .where(refund_request_lines.c.request_id == request_id)
        .order_by(refund_request_lines.c.ticket_id)).all()


def _decide(conn: sa.Connection, request_id: int, actor: str, state: str, note: str,
            now: datetime) -> sa.Row:
    """Move a pending request to ``state`` by one conditional UPDATE, if ``actor`` is not its
    maker: of two deciders racing, one moves it and the other is refused."""
    r = refund_request(conn, request_id, lock=True)
    if r.state != "pending":
        raise RefundError("refund_not_pending", request_id=request_id, state=r.state)
    if actor == r.maker:
        raise RefundError("maker_cannot_approve", request_id=request_id, maker=r.maker)
    moved = conn.execute(sa.update(refund_requests).where(
        refund_requests.c.id == request_id, refund_requests.c.state == "pending")
        .values(state=state, checker=actor, decided_at=now, decision_note=note or None)).rowcount
    if moved != 1:
        now_state = refund_request(conn, request_id).state
        raise RefundError("refund_not_pending", request_id=request_id, state=now_state)
    return r


def approve_request(conn: sa.Connection, request_id: int, actor: str,
                    now: datetime | None = None, *, supervisor: bool = False,
                    note: str = "") -> Approved:
    """Approve a pending request (``actor`` is the checker) and revoke its tickets: their
    codes stop at every venue now; their seats wait for the money (:func:`refund_ended`).
    A ticket that has admitted someone is refunded only by a ``supervisor`` with a ``note``
    of 4 to 200 characters (the ticket rule's ``admitted_needs_supervisor`` /
    ``reason_required``). The caller gives the money back in this same transaction."""
    now = now or utcnow()
    why = " ".join(note.split())[:MAX_NOTE]
    r = _decide(conn, request_id, actor, "approved", why, now)
    for line in request_lines(conn, request_id):
        revoke_ticket(conn, line.ticket_id, "refunded", now, actor, supervisor=supervisor,
                      reason=why, give_back=False)
    o = conn.execute(sa.select(orders).where(orders.c.id == r.order_id)).one()
    record(conn, actor, "refund.approve", f"refund_request:{request_id}",
           {"state": "pending", "maker": r.maker},
           {"state": "approved", "amount": r.amount, "order": o.number, "note": why})
    return Approved(request_id, r.order_id, r.amount, r.currency, o.payment_provider,
                    o.payment_reference)


def reopen_request(conn: sa.Connection, request_id: int, actor: str,
                   now: datetime | None = None) -> Approved:
    """A failed refund, to be sent again (its tickets stayed revoked, its seats out of sale):
    back to ``approved`` by one conditional UPDATE (two retries racing: one wins), audited;
    the caller gives the money back again in this transaction."""
    now = now or utcnow()
    moved = conn.execute(sa.update(refund_requests).where(
        refund_requests.c.id == request_id, refund_requests.c.state == "failed")
        .values(state="approved", finished_at=None, payment_refund_id=None)).rowcount
    r = refund_request(conn, request_id)
    if moved != 1:
        raise RefundError("refund_not_failed", request_id=request_id, state=r.state)
    o = conn.execute(sa.select(orders).where(orders.c.id == r.order_id)).one()
    record(conn, actor, "refund.retry", f"refund_request:{request_id}", {"state": "failed"},
           {"state": "approved", "amount": r.amount})
    return Approved(request_id, r.order_id, r.amount, r.currency, o.payment_provider,
                    o.payment_reference)


def reject_request(conn: sa.Connection, request_id: int, actor: str, note: str,
                   now: datetime | None = None) -> None:
    """Reject a pending request, saying why (4 to 200 characters): its tickets stay live and
    may be asked for again."""
    now = now or utcnow()
    why = " ".join(note.split())
    if not MIN_NOTE <= len(why) <= MAX_NOTE:
        raise RefundError("decision_note_required", low=MIN_NOTE, high=MAX_NOTE)
    r = _decide(conn, request_id, actor, "rejected", why, now)
    conn.execute(sa.update(refund_request_lines)
                 .where(refund_request_lines.c.request_id == request_id)
                 .values(active_ticket_id=None))
    record(conn, actor, "refund.reject", f"refund_request:{request_id}",
           {"state": "pending", "maker": r.maker}, {"state": "rejected", "note": why})


def attach_payment_refund(conn: sa.Connection, request_id: int, payment_refund_id: int) -> None:
    """Record which refund of the payment carries this request's money."""
    conn.execute(sa.update(refund_requests).where(refund_requests.c.id == request_id)
                 .values(payment_refund_id=payment_refund_id))


def finish_request(conn: sa.Connection, request_id: int, succeeded: bool,
                   now: datetime | None = None) -> bool:
    """An approved request's money went back (or will not): ``succeeded`` gives its tickets'
    seats and quota back to sale and makes the order (partially) refunded; a failure leaves
    the tickets revoked and the seats out of sale (the money is still owed). Once only: a
    second call changes nothing (False)."""
    now = now or utcnow()
    state = "succeeded" if succeeded else "failed"
    moved = conn.execute(sa.update(refund_requests).where(
        refund_requests.c.id == request_id, refund_requests.c.state == "approved")
        .values(state=state, finished_at=now)).rowcount == 1
    if not moved:
        return False
    if succeeded:
        for line in request_lines(conn, request_id):
            give_back_ticket(conn, line.ticket_id)
    r = refund_request(conn, request_id)
    record(conn, SYSTEM, f"refund.{state}", f"refund_request:{request_id}",
           {"state": "approved"}, {"state": state, "amount": r.amount})
    return True


def refund_ended(conn: sa.Connection, payment_refund_id: int, succeeded: bool,
                 now: datetime | None = None) -> None:
    """The payments area's news that a refund ended: the request it carries (if any) ends."""
    rid = conn.execute(sa.select(refund_requests.c.id).where(
        refund_requests.c.payment_refund_id == payment_refund_id)).scalar()
    if rid is not None:
        finish_request(conn, rid, succeeded, now)


# -- a cancelled session ----------------------------------------------------------------------


def cancelled_by(conn: sa.Connection, session_id: int) -> str:
    """Who cancelled the session (its audit record): the maker of its bulk refunds."""
    state = conn.execute(sa.select(sessions.c.state)
                         .where(sessions.c.id == session_id)).scalar()
    if state != "cancelled":
        raise RefundError("session_not_cancelled", session_id=session_id)
    found = find_audit(conn, action="session.cancel", subject=f"session:{session_id}", limit=1)
    return found[0].actor if found else SYSTEM


def orders_to_refund(conn: sa.Connection, session_id: int, after: int, limit: int) -> list[int]:
    """Paid orders of the session, by id after ``after``, that still have a live ticket no
    request names: what a bulk refund has left to do (so a run stopped anywhere resumes)."""
    live = (sa.select(tickets.c.order_id)
            .outerjoin(refund_request_lines,
                       refund_request_lines.c.active_ticket_id == tickets.c.id)
            .where(tickets.c.order_id == orders.c.id, tickets.c.state == "issued",
                   refund_request_lines.c.id.is_(None)))
    return list(conn.execute(sa.select(orders.c.id).where(
        orders.c.session_id == session_id, orders.c.id > after,
        orders.c.state.in_(REFUNDABLE_ORDER_STATES), live.exists())
        .order_by(orders.c.id).limit(limit)).scalars())


def request_rows(conn: sa.Connection, state: str | None = None, order_id: int | None = None,
                 limit: int = 200) -> list[sa.Row]:
    """Refund requests, oldest first, with their order's number (for the lists)."""
    q = (sa.select(refund_requests, orders.c.number.label("order_number"),
                   orders.c.session_id)
         .join(orders, orders.c.id == refund_requests.c.order_id)
         .order_by(refund_requests.c.id).limit(limit))
    if state is not None:
        q = q.where(refund_requests.c.state == state)
    if order_id is not None:
        q = q.where(refund_requests.c.order_id == order_id)
    return conn.execute(q).all()


def order_by_number(conn: sa.Connection, number: str) -> sa.Row | None:
    return conn.execute(sa.select(orders).where(orders.c.number == number)).first()


def ticket_ids(conn: sa.Connection, order: sa.Row, numbers: list[str]) -> list[int]:
    """The ids of these ticket numbers of the order (``ticket_not_in_order`` for another)."""
    found = dict(conn.execute(sa.select(tickets.c.number, tickets.c.id).where(
        tickets.c.order_id == order.id, tickets.c.number.in_(numbers))).all())
    for n in numbers:
        if n not in found:
            raise RefundError("ticket_not_in_order", ticket=n, order_id=order.number)
    return [found[n] for n in numbers]
