"""Booths, outlets and kiosks: the channels that sell at a counter (``SELLING_KINDS``), each
with the staff who work there and its opening hours, selling through the box office under its
own name; the pick-up there of tickets booked online; and each booth's takings of a China day,
set beside what the ledger holds for the same orders.

A staff member works at one booth at most (:func:`booth_of_staff`): the box office sells under
that booth's name, counted against its quotas, and only while it is switched on and open.

A pick-up is decided by the audit log: an order whose ``booth.pickup`` row exists was picked
up, wherever; its row is written in the transaction that hands the tickets over, with the
order's row locked, so two counters never both print one order's tickets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from cloud.catalog.tables import seats, sessions
from cloud.channels.channels import set_hours
from cloud.channels.tables import SELLING_KINDS, channel_staff, channels
from cloud.core.audit import audit_log, record
from cloud.core.errors import Code, HubError
from cloud.inventory.seat_plan import seat_label
from cloud.ledger.tables import ledger_entries
from cloud.sales.holders import document_match
from cloud.sales.order_plan import OrderError
from cloud.sales.tables import holders, orders, tickets
from cloud.sales.tickets import normal_document
from cloud.staff.tables import staff
from sync.timeutil import CHINA

PICKUP = "booth.pickup"
PICKABLE = ("paid", "partially_refunded")


class BoothError(HubError):
    """A booth's staff, opening hours, pick-up or takings refused."""

    codes = {
        "not_a_booth": Code(409, "channel %(channel)s is not a booth, outlet or kiosk"),
        "no_such_staff": Code(404, "no staff member %(staff)s"),
        "staff_elsewhere": Code(409, "staff member %(staff)s works at %(booth)s already"),
        "not_at_booth": Code(404, "staff member %(staff)s does not work at this booth"),
        "pickup_not_paid": Code(409, "order %(number)s is %(state)s: nothing to pick up"),
        "pickup_not_online": Code(409, "order %(number)s was sold at a counter, where its "
                                       "tickets were handed over"),
        "pickup_proof": Code(403, "the document shown names nobody on order %(number)s"),
        "picked_up_already": Code(409, "the tickets of order %(number)s were picked up at "
                                       "%(booth)s already"),
    }


def _booth(conn: sa.Connection, channel_id: int):
    row = conn.execute(sa.select(channels).where(channels.c.id == channel_id)).first()
    if row is None or row.kind not in SELLING_KINDS:
        raise BoothError("not_a_booth", channel=channel_id if row is None else row.code,
                         field="channel_id")
    return row


def set_booth_hours(conn: sa.Connection, channel_id: int, hours: Any, actor: str,
                    now: datetime) -> None:
    """A booth's opening hours changed (None: open whenever it is switched on)."""
    _booth(conn, channel_id)
    set_hours(conn, channel_id, hours, actor, now)


# -- staff -----------------------------------------------------------------------------------


def _staff_id(conn: sa.Connection, username: str) -> int:
    found = conn.execute(sa.select(staff.c.id).where(staff.c.username == username)).scalar()
    if found is None:
        raise BoothError("no_such_staff", staff=username[:80], field="staff")
    return found


def booth_of_staff(conn: sa.Connection, staff_id: int):
    """The booth, outlet or kiosk the staff member works at (its channel row), or None."""
    return conn.execute(sa.select(channels).join(
        channel_staff, channel_staff.c.channel_id == channels.c.id).where(
        channel_staff.c.staff_id == staff_id, channels.c.kind.in_(SELLING_KINDS))
        .order_by(channels.c.id).limit(1)).first()


def add_staff(conn: sa.Connection, channel_id: int, username: str, actor: str,
              now: datetime) -> int:
    """The staff member (by username) works at this booth from now: their box office sales
    are the booth's. Refused when they work at another booth already; a second time at the
    same booth changes nothing. Their id."""
    booth = _booth(conn, channel_id)
    staff_id = _staff_id(conn, username)
    # the staff member's row locked: two booths adding them at once wait for each other
    conn.execute(sa.select(staff.c.id).where(staff.c.id == staff_id).with_for_update())
    current = booth_of_staff(conn, staff_id)
    if current is not None and current.id != channel_id:
        raise BoothError("staff_elsewhere", staff=username, booth=current.code, field="staff")
    if current is None:
        conn.execute(sa.insert(channel_staff).values(channel_id=channel_id, staff_id=staff_id,
                                                     added_by=actor, added_at=now))
        record(conn, actor, "booth.staff_add", f"channel:{channel_id}", None,
               {"booth": booth.code, "staff": username})
    return staff_id


def remove_staff(conn: sa.Connection, channel_id: int, username: str, actor: str) -> None:
    """The staff member no longer works at this booth: their sales are no booth's."""
    booth = _booth(conn, channel_id)
    staff_id = _staff_id(conn, username)
    gone = conn.execute(sa.delete(channel_staff).where(
        channel_staff.c.channel_id == channel_id, channel_staff.c.staff_id == staff_id)).rowcount
    if not gone:
        raise BoothError("not_at_booth", staff=username, field="staff")
    record(conn, actor, "booth.staff_remove", f"channel:{channel_id}",
           {"booth": booth.code, "staff": username}, None)


def booth_staff(conn: sa.Connection, channel_id: int) -> list:
    """Who works at the booth: id, username, since when and who added them."""
    return conn.execute(sa.select(staff.c.id, staff.c.username, staff.c.disabled,
                                  channel_staff.c.added_by, channel_staff.c.added_at)
                        .join(staff, staff.c.id == channel_staff.c.staff_id)
                        .where(channel_staff.c.channel_id == channel_id)
                        .order_by(staff.c.username)).all()


def booths(conn: sa.Connection) -> list:
    """Every booth, outlet and kiosk, by code."""
    return conn.execute(sa.select(channels).where(channels.c.kind.in_(SELLING_KINDS))
                        .order_by(channels.c.code)).all()


# -- pick-up ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PickedUp:
    """The tickets handed over at a booth, for printing."""

    order_number: str
    booth: str
    tickets: tuple[dict, ...]


def picked_up(conn: sa.Connection, order_id: int):
    """The audit row of the order's pick-up (when, who, at which booth), or None."""
    return conn.execute(sa.select(audit_log.c.at, audit_log.c.actor, audit_log.c.after)
                        .where(audit_log.c.action == PICKUP,
                               audit_log.c.subject == f"order:{order_id}")
                        .order_by(audit_log.c.id).limit(1)).first()


def _proven(conn: sa.Connection, o, holder_ids: set[int], doc_type: str,
            doc_number: str) -> str:
    """How the buyer proved the order theirs: the order number alone when its tickets name
    nobody (it is known only to the buyer's account), else a document one of them names."""
    if not holder_ids:
        return "order_number"
    if not doc_number.strip():
        raise BoothError("pickup_proof", number=o.number, field="doc_number")
    try:
        number = normal_document(doc_type, doc_number)
    except HubError:  # a number no document has names nobody
        raise BoothError("pickup_proof", number=o.number, field="doc_number") from None
    match = conn.execute(sa.select(holders.c.id).where(
        holders.c.id.in_(holder_ids), document_match(conn, number)).limit(1)).first()
    if match is None:
        raise BoothError("pickup_proof", number=o.number, field="doc_number")
    return "document"


def pick_up(conn: sa.Connection, channel_id: int, order_number: str, *, doc_type: str = "",
            doc_number: str = "", actor: str) -> PickedUp:
    """Hand over at a booth the tickets of an order booked online and paid: once, the
    buyer showing a document that one of its tickets names (or, when they name nobody, the
    order's number). The tickets still valid are returned with their codes, for printing; the
    hand-over is audited (``booth.pickup``) and decides every later try."""
    booth = _booth(conn, channel_id)
    o = conn.execute(sa.select(orders.c.id, orders.c.number, orders.c.state, orders.c.buyer)
                     .where(orders.c.number == order_number.strip().upper()[:20])
                     .with_for_update()).first()
    if o is None:
        raise OrderError("unknown_order", order_id=order_number[:20], field="number")
    if o.buyer is None:
        raise BoothError("pickup_not_online", number=o.number, field="number")
    if o.state not in PICKABLE:
        raise BoothError("pickup_not_paid", number=o.number, state=o.state, field="number")
    before = picked_up(conn, o.id)
    if before is not None:
        raise BoothError("picked_up_already", number=o.number,
                         booth=(before.after or {}).get("booth", "?"), field="number")
    rows = conn.execute(
        sa.select(tickets.c.number, tickets.c.code, tickets.c.amount, tickets.c.currency,
                  tickets.c.holder_id, tickets.c.seat_id, sessions.c.name.label("session"),
                  sessions.c.starts_at, seats.c.level, seats.c.row, seats.c.number.label("no"))
        .outerjoin(sessions, sessions.c.id == tickets.c.session_id)
        .outerjoin(seats, seats.c.id == tickets.c.seat_id)
        .where(tickets.c.order_id == o.id, tickets.c.state == "issued")
        .order_by(tickets.c.id)).all()
    if not rows:
        raise BoothError("pickup_not_paid", number=o.number, state=o.state, field="number")
    proof = _proven(conn, o, {r.holder_id for r in rows if r.holder_id is not None},
                    doc_type, doc_number)
    record(conn, actor, PICKUP, f"order:{o.id}", None,
           {"number": o.number, "booth": booth.code, "channel_id": booth.id, "proof": proof,
            "tickets": [r.number for r in rows]})
    return PickedUp(o.number, booth.code, tuple(
        {"number": r.number, "code": r.code, "amount": r.amount, "currency": r.currency,
         "session": r.session, "starts_at": r.starts_at,
         "seat": seat_label(r.level, r.row, r.no) if r.seat_id is not None else None}
        for r in rows))


# -- takings ---------------------------------------------------------------------------------


def china_day(day: date) -> tuple[datetime, datetime]:
    """A China day's start and end, in UTC."""
    start = datetime.combine(day, time(0), CHINA).astimezone(UTC)
    return start, start + timedelta(days=1)


def takings(conn: sa.Connection, channel_id: int, day: date) -> dict[str, Any]:
    """The booth's takings of a China day: the orders paid through it that day, summed per
    payment provider and currency, beside the ledger's payment entries for the same orders
    (read only); every order whose ledger amount differs from what it took is listed."""
    booth = _booth(conn, channel_id)
    start, end = china_day(day)
    paid = conn.execute(sa.select(orders.c.id, orders.c.number, orders.c.total,
                                  orders.c.currency, orders.c.payment_provider)
                        .where(orders.c.channel_id == channel_id, orders.c.paid_at >= start,
                               orders.c.paid_at < end).order_by(orders.c.id)).all()
    ledger: dict[int, int] = {}
    ids = [o.id for o in paid]
    for i in range(0, len(ids), 500):
        for r in conn.execute(sa.select(ledger_entries.c.order_id,
                                        sa.func.sum(ledger_entries.c.amount).label("amount"))
                              .where(ledger_entries.c.order_id.in_(ids[i:i + 500]),
                                     ledger_entries.c.kind == "payment",
                                     ledger_entries.c.state != "voided")
                              .group_by(ledger_entries.c.order_id)):
            ledger[r.order_id] = int(r.amount)
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    differences = []
    for o in paid:
        provider = o.payment_provider or "-"
        t = totals.setdefault((provider, o.currency), {
            "provider": provider, "currency": o.currency, "orders": 0, "takings": 0,
            "ledger": 0})
        posted = ledger.get(o.id, 0)
        t["orders"] += 1
        t["takings"] += int(o.total)
        t["ledger"] += posted
        if posted != o.total:
            differences.append({"number": o.number, "provider": provider,
                                "currency": o.currency, "takings": int(o.total),
                                "ledger": posted})
    rows = [totals[k] for k in sorted(totals)]
    return {"booth": booth.code, "channel_id": booth.id, "day": day.isoformat(),
            "providers": rows, "differences": differences,
            "takings": sum(r["takings"] for r in rows), "ledger": sum(r["ledger"] for r in rows),
            "matches": not differences}
