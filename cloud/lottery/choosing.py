"""Seats for the winners: chosen by a winner on the seat map during the window, else
assigned when it closes.

A winner picks as many seats as their application has tickets, of their lot's tier, among the
seats the presale keeps (cloud/lottery/drawing.py) or any free one of that tier; the seats,
lines and tickets go on the application's order at once (cloud/sales/seating.py), with the
holders named at application. When the window has closed, :func:`assign_rest` gives every
remaining winner seats of their tier by the pure function of cloud/lottery/assign.py (adjacent
in one row where possible, deterministic for a given state), in draw order, then gives the
kept seats nobody took back to everyone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import seats
from cloud.core.audit import record
from cloud.core.jobs import enqueue
from cloud.inventory.holds import takeable_seats
from cloud.inventory.tables import session_seats
from cloud.lottery import assign
from cloud.lottery.drawing import customer_of, release_kept
from cloud.lottery.errors import LotteryError
from cloud.lottery.presales import check_session, lots, move, presale, session_cancelled
from cloud.lottery.tables import presale_applications, presale_holders
from cloud.sales.orders import DELIVER_TICKETS_JOB
from cloud.sales.seating import SeatedLine, seat_order
from sync.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assigned:
    seated: int
    released: int


def _lot_of(conn: sa.Connection, presale_id: int, lot_id: int):
    return next(x for x in lots(conn, presale_id) if x.id == lot_id)


def _seat(conn: sa.Connection, p, app, lot, seat_ids: list[int], now: datetime,
          actor: str) -> None:
    """Give an application's order these seats and its tickets (one per holder, in order)."""
    check_session(conn, lot.session_id, lock=True, field="number")
    if not conn.execute(sa.update(presale_applications).where(
            presale_applications.c.id == app.id, presale_applications.c.state == "won")
            .values(state="seated")).rowcount:
        raise LotteryError("not_a_winner", number=app.number, state=app.state, field="number")
    people = conn.execute(sa.select(presale_holders.c.holder_id, presale_holders.c.doc_hash)
                          .where(presale_holders.c.application_id == app.id)
                          .order_by(presale_holders.c.position)).all()
    zone_of = dict(conn.execute(sa.select(session_seats.c.seat_id, session_seats.c.zone_id)
                                .where(session_seats.c.session_id == lot.session_id,
                                       session_seats.c.seat_id.in_(seat_ids))).all())
    lines = []
    for i, seat_id in enumerate(seat_ids):
        who = people[i] if i < len(people) else None
        lines.append(SeatedLine(
            seat_id=seat_id, zone_id=zone_of[seat_id], price_tier_id=lot.price_tier_id,
            # the price paid at application (the tier's may have changed since)
            amount=app.amount // app.quantity, currency=app.currency,
            holder_id=who.holder_id if who else None, holder_hash=who.doc_hash if who else None,
            doc_hash=who.doc_hash if who and p.real_name else None))
    seat_order(conn, app.order_id, lot.session_id, lines, now, actor, customer_of(p.id))
    if app.buyer.startswith("buyer:"):
        enqueue(conn, DELIVER_TICKETS_JOB, {"order_id": app.order_id}, now=now)


def _tier_seats(lot, customer: str, now: datetime) -> list[sa.ColumnElement[bool]]:
    cond = takeable_seats(lot.session_id, now, customer)
    if lot.category is not None:
        cond.append(session_seats.c.seat_id.in_(
            sa.select(seats.c.id).where(seats.c.category == lot.category)))
    return cond


def choose_seats(conn: sa.Connection, buyer: str, number: str, seat_ids: list[int],
                 now: datetime | None = None) -> None:
    """A winner's choice of seats for their application (exactly its quantity, free seats of
    its tier), before the window closes."""
    now = now or utcnow()
    app = conn.execute(sa.select(presale_applications).where(
        presale_applications.c.number == number,
        presale_applications.c.buyer == buyer)).first()
    if app is None:
        raise LotteryError("unknown_application", number=number, field="number")
    p = presale(conn, app.presale_id)
    if app.state != "won" or p.state != "drawn":
        raise LotteryError("not_a_winner", number=number, state=app.state, field="number")
    if now >= p.choose_closes_at:
        raise LotteryError("choice_closed", closes=p.choose_closes_at.isoformat(),
                           field="seats")
    lot = _lot_of(conn, p.id, app.lot_id)
    wanted = list(dict.fromkeys(seat_ids))
    if len(wanted) != app.quantity or len(wanted) != len(seat_ids):
        raise LotteryError("bad_seats", quantity=app.quantity, field="seats")
    found = conn.execute(sa.select(sa.func.count()).select_from(session_seats).where(
        session_seats.c.seat_id.in_(wanted), *_tier_seats(lot, customer_of(p.id), now))
    ).scalar_one()
    if found != len(wanted):
        raise LotteryError("bad_seats", quantity=app.quantity, field="seats")
    _seat(conn, p, app, lot, wanted, now, buyer)
    record(conn, buyer, "presale.seats_chosen", f"presale:{p.id}", None,
           {"application": number, "seats": wanted})


def free_tier_seats(conn: sa.Connection, presale_id: int, lot, now: datetime
                    ) -> list[assign.FreeSeat]:
    ss = session_seats.c
    return [assign.FreeSeat(r.seat_id, r.zone_id, r.row_key, r.position, r.rank)
            for r in conn.execute(sa.select(ss.seat_id, ss.zone_id, ss.row_key, ss.position,
                                            ss.rank)
                                  .where(*_tier_seats(lot, customer_of(presale_id), now))
                                  .order_by(ss.seat_id))]


def assign_rest(conn: sa.Connection, presale_id: int, actor: str, now: datetime | None = None,
                close_now: bool = False) -> Assigned:
    """Seat every winner still without seats, lot by lot in draw order, once the window has
    closed (or closing it now, ``close_now``: a staff decision, audited); then give back the
    kept seats nobody took."""
    now = now or utcnow()
    p = presale(conn, presale_id, lock=True)
    if p.state != "drawn":
        raise LotteryError("presale_state", state=p.state, action="assigning seats",
                           needs="drawn", field="presale_id")
    if now < p.choose_closes_at and not close_now:
        raise LotteryError("choice_still_open", closes=p.choose_closes_at.isoformat(),
                           field="presale_id")
    seated = 0
    for lot in lots(conn, presale_id):
        if session_cancelled(conn, lot.session_id, lock=True):
            continue  # its winners are given up and refunded (cloud/lottery/cancelling.py)
        apps = conn.execute(sa.select(presale_applications).where(
            presale_applications.c.lot_id == lot.id, presale_applications.c.state == "won")
            .order_by(presale_applications.c.rank, presale_applications.c.id)).all()
        if not apps:
            continue
        free = free_tier_seats(conn, presale_id, lot, now)
        try:
            given = assign.assign(free, [assign.Want(a.number, a.quantity) for a in apps])
        except assign.AssignError as e:  # seats of the tier sold elsewhere after the keep
            raise LotteryError("not_enough_seats", lot_id=lot.id, free=len(free),
                               wanted=sum(a.quantity for a in apps), field="presale_id") from e
        for a in apps:
            _seat(conn, p, a, lot, list(given[a.number]), now, actor)
            seated += 1
    released = release_kept(conn, presale_id)
    move(conn, presale_id, "drawn", "assigned", actor, "assign", assigned_at=now,
         choose_closes_at=min(p.choose_closes_at, now))
    log.info("presale %s: %s winners seated, %s kept seats given back", presale_id, seated,
             released)
    return Assigned(seated, released)
