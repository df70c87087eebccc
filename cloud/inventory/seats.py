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
from cloud.inventory.tables import session_seats
from sync.timeutil import utcnow

CATEGORIES = ("sellable", "registered", "occupied", "emergency")


class InventoryError(ValueError):
    pass


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
        raise InventoryError(f"category must be one of {', '.join(CATEGORIES)}")
    confirmed = conn.execute(sa.select(sessions.c.config_confirmed_at)
                             .where(sessions.c.id == session_id)).scalar()
    rows = conn.execute(sa.select(session_seats.c.seat_id, session_seats.c.category,
                                  session_seats.c.status)
                        .where(session_seats.c.session_id == session_id,
                               session_seats.c.seat_id.in_(seat_ids))
                        .with_for_update()).all()
    if len(rows) != len(set(seat_ids)):
        raise InventoryError("some seats are not in this session's configuration")
    for r in rows:
        if r.status == "sold":
            raise InventoryError(f"seat {r.seat_id} is sold")
        if confirmed is not None and r.category != "emergency":
            raise InventoryError(f"seat {r.seat_id}: after the configuration is confirmed only "
                                 "emergency seats may change category")
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
    conn.execute(sa.update(sessions).where(sessions.c.id == session_id).values(on_sale=True))
    record(conn, actor, "session.on_sale", f"session:{session_id}", {"on_sale": False},
           {"on_sale": True})


def reserve(conn: sa.Connection, session_id: int, seat_ids: list[int], customer: str,
            until: datetime, actor: str = SYSTEM) -> None:
    """Keep sellable seats for a named customer until a date."""
    n = conn.execute(sa.update(session_seats).where(
        session_seats.c.session_id == session_id, session_seats.c.seat_id.in_(seat_ids),
        session_seats.c.category == "sellable", session_seats.c.status == "available")
        .values(reserved_for=customer, reserved_until=until)).rowcount
    if n != len(set(seat_ids)):
        raise InventoryError("only available sellable seats can be reserved")
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
        raise InventoryError(f"seat {seat_id} is not for sale in this session (sold, not "
                             "sellable, or reserved for someone else)")


def release(conn: sa.Connection, session_id: int, seat_id: int) -> None:
    conn.execute(sa.update(session_seats).where(
        session_seats.c.session_id == session_id, session_seats.c.seat_id == seat_id)
        .values(status="available"))
