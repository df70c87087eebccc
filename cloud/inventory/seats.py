"""Each session's seat configuration, and claiming seats when they are sold.

A session's configuration starts as a copy of the venue map (damaged seats as 'occupied',
removed seats left out). Editing it never touches the venue map; while the session is not on
sale, later changes to the venue map flow into it. Once the configuration is confirmed, only
emergency seats may change category. A seat is sold by a conditional UPDATE that succeeds for
one transaction only; the unique index on live tickets is the backstop.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from cloud.catalog.tables import seats, sessions
from cloud.core.audit import SYSTEM, record
from cloud.core.errors import Code, HubError
from cloud.inventory.tables import session_seats
from sync.timeutil import utcnow

CATEGORIES = ("sellable", "registered", "occupied", "emergency")
MAX_CUSTOMER = 200


class InventoryError(HubError):
    """A seat configuration change, reservation or sale of a seat that cannot be made."""

    codes = {
        "unknown_category": Code(422, "category must be one of %(categories)s"),
        "seats_not_in_session": Code(422, "some seats are not in this session's configuration"),
        "seat_sold": Code(409, "seat %(seat_id)s is sold"),
        "seat_category_locked": Code(
            409, "seat %(seat_id)s: after the configuration is confirmed only emergency seats "
                 "may change category"),
        "seats_not_reservable": Code(409, "only available sellable seats can be reserved"),
        "seat_not_for_sale": Code(
            409, "seat %(seat_id)s is not for sale in this session (sold, not sellable, or "
                 "reserved for someone else)"),
        "reservation_customer_bad": Code(
            422, "give the name of the customer the seats are kept for (up to 200 characters)"),
        "reservation_in_past": Code(422, "the reservation must end in the future"),
        "unknown_session": Code(404, "no session %(session_id)s"),
        "not_confirmed": Code(409, "session %(session_id)s: confirm the seat configuration "
                                   "before the session goes on sale"),
        "unknown_event": Code(404, "no event %(event_id)s"),
        "session_ends_before_start": Code(422, "a session must end after it starts"),
        "gates_open_after_start": Code(422, "gates must open before the session starts"),
    }


def _utc(dt):
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def copy_venue_map(conn: sa.Connection, session_id: int, venue_id: int) -> int:
    """Give a session the venue's seats it does not have yet; returns how many."""
    have = sa.select(session_seats.c.seat_id).where(session_seats.c.session_id == session_id)
    rows = [{"session_id": session_id, "seat_id": r.id,
             "category": "occupied" if r.damaged else "sellable", "status": "available"}
            for r in conn.execute(sa.select(seats.c.id, seats.c.damaged).where(
                seats.c.venue_id == venue_id, seats.c.removed.is_(False),
                seats.c.id.not_in(have)))]
    for start in range(0, len(rows), 5000):
        conn.execute(sa.insert(session_seats), rows[start:start + 5000])
    return len(rows)


def follow_venue_map(conn: sa.Connection, venue_id: int) -> None:
    """After the venue map changed: sessions not on sale take the new seats, drop removed
    unsold ones, and stop selling seats that became damaged."""
    for (session_id,) in conn.execute(sa.select(sessions.c.id).where(
            sessions.c.venue_id == venue_id, sessions.c.on_sale.is_(False))).all():
        copy_venue_map(conn, session_id, venue_id)
        removed = sa.select(seats.c.id).where(seats.c.venue_id == venue_id, seats.c.removed)
        damaged = sa.select(seats.c.id).where(seats.c.venue_id == venue_id, seats.c.damaged)
        conn.execute(sa.delete(session_seats).where(
            session_seats.c.session_id == session_id, session_seats.c.status == "available",
            session_seats.c.seat_id.in_(removed)))
        conn.execute(sa.update(session_seats).where(
            session_seats.c.session_id == session_id, session_seats.c.category == "sellable",
            session_seats.c.seat_id.in_(damaged)).values(category="occupied"))


def set_category(conn: sa.Connection, session_id: int, seat_ids: list[int],
                 category: str, actor: str = SYSTEM) -> None:
    if category not in CATEGORIES:
        raise InventoryError("unknown_category", categories=", ".join(CATEGORIES))
    confirmed = conn.execute(sa.select(sessions.c.config_confirmed_at)
                             .where(sessions.c.id == session_id)).scalar()
    rows = conn.execute(sa.select(session_seats.c.seat_id, session_seats.c.category,
                                  session_seats.c.status)
                        .where(session_seats.c.session_id == session_id,
                               session_seats.c.seat_id.in_(seat_ids))
                        .with_for_update()).all()
    if len(rows) != len(set(seat_ids)):
        raise InventoryError("seats_not_in_session")
    for r in rows:
        if r.status == "sold":
            raise InventoryError("seat_sold", seat_id=r.seat_id)
        if confirmed is not None and r.category != "emergency":
            raise InventoryError("seat_category_locked", seat_id=r.seat_id)
    conn.execute(sa.update(session_seats).where(
        session_seats.c.session_id == session_id, session_seats.c.seat_id.in_(seat_ids))
        .values(category=category))
    record(conn, actor, "session.seats.category", f"session:{session_id}",
           {"seats": {r.seat_id: r.category for r in rows}},
           {"seats": {r.seat_id: category for r in rows}})


def confirm_configuration(conn: sa.Connection, session_id: int, actor: str = SYSTEM) -> None:
    conn.execute(sa.update(sessions).where(sessions.c.id == session_id)
                 .values(config_confirmed_at=utcnow()))
    record(conn, actor, "session.configuration.confirm", f"session:{session_id}")


def put_on_sale(conn: sa.Connection, session_id: int, actor: str = SYSTEM) -> None:
    """Open a session for sale, once its seat configuration is confirmed (a session already
    on sale stays as it is)."""
    s = conn.execute(sa.select(sessions.c.on_sale, sessions.c.config_confirmed_at)
                     .where(sessions.c.id == session_id).with_for_update()).first()
    if s is None:
        raise InventoryError("unknown_session", session_id=session_id)
    if s.on_sale:
        return
    if s.config_confirmed_at is None:
        raise InventoryError("not_confirmed", session_id=session_id)
    conn.execute(sa.update(sessions).where(sessions.c.id == session_id).values(on_sale=True))
    record(conn, actor, "session.on_sale", f"session:{session_id}", {"on_sale": False},
           {"on_sale": True})


def reserve(conn: sa.Connection, session_id: int, seat_ids: list[int], customer: str,
            until: datetime, actor: str = SYSTEM) -> None:
    """Keep sellable seats for a named customer (1 to 200 characters) until a date in the
    future."""
    customer = customer.strip()
    if not 1 <= len(customer) <= MAX_CUSTOMER:
        raise InventoryError("reservation_customer_bad")
    if until <= utcnow():
        raise InventoryError("reservation_in_past")
    n = conn.execute(sa.update(session_seats).where(
        session_seats.c.session_id == session_id, session_seats.c.seat_id.in_(seat_ids),
        session_seats.c.category == "sellable", session_seats.c.status == "available")
        .values(reserved_for=customer, reserved_until=until)).rowcount
    if n != len(set(seat_ids)):
        raise InventoryError("seats_not_reservable")
    record(conn, actor, "session.seats.reserve", f"session:{session_id}", None,
           {"seats": sorted(set(seat_ids)), "until": until.isoformat()})


def claim(conn: sa.Connection, session_id: int, seat_id: int, customer: str | None,
          now: datetime) -> None:
    """Mark a seat sold for this session, or raise: the UPDATE succeeds for one caller only."""
    free_for_all = sa.or_(session_seats.c.reserved_for.is_(None),
                          session_seats.c.reserved_until < now)
    allowed = free_for_all if customer is None else sa.or_(
        free_for_all, session_seats.c.reserved_for == customer)
    got = conn.execute(sa.update(session_seats).where(
        session_seats.c.session_id == session_id, session_seats.c.seat_id == seat_id,
        session_seats.c.status == "available", session_seats.c.category == "sellable", allowed)
        .values(status="sold").returning(session_seats.c.seat_id)).first()
    if got is None:
        raise InventoryError("seat_not_for_sale", seat_id=seat_id)


def release(conn: sa.Connection, session_id: int, seat_id: int) -> None:
    conn.execute(sa.update(session_seats).where(
        session_seats.c.session_id == session_id, session_seats.c.seat_id == seat_id)
        .values(status="available"))
