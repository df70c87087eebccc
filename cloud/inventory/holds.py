"""Holding a session's seats for an order until its payment deadline, and selling or releasing
them.

A hold is a conditional UPDATE of the seat's row (``available`` -> ``held``, naming the order
and its deadline) that succeeds for one transaction only; seats are taken in key order so two
orders never wait on each other in a circle. A hold past its deadline counts as available in
every predicate here (lazy expiry: no job has to run for a seat to return to sale); the row
keeps naming the lapsed order until someone takes the seat or the order is tidied.

Best-available looks for ``n`` adjacent seats of one row of a zone (``position`` follows on,
lowest total ``rank`` first). On PostgreSQL a run is taken with ``FOR UPDATE SKIP LOCKED``
inside a savepoint, so concurrent buyers skip each other's runs instead of queueing on them;
a run that comes back short is let go (the savepoint is rolled back, which releases its row
locks) and the next is tried. SQLite has one writer at a time, so the first run read is free.
"""

from __future__ import annotations

from datetime import datetime
from itertools import groupby

import sqlalchemy as sa

from cloud.catalog.tables import seats
from cloud.inventory.seats import InventoryError, free, reservation_allows
from cloud.inventory.tables import session_seats

SEARCH_ROUNDS = 3


def _takeable(session_id: int, now: datetime, customer: str | None,
              order_id: int | None) -> list[sa.ColumnElement[bool]]:
    return [session_seats.c.session_id == session_id, session_seats.c.category == "sellable",
            free(now, order_id), reservation_allows(customer, now)]


def hold_seats(conn: sa.Connection, session_id: int, seat_ids: list[int], order_id: int,
               until: datetime, now: datetime, customer: str | None = None) -> dict[int, int]:
    """Hold the chosen seats for an order until ``until``; their zones by seat id. Raises
    ``seat_taken`` (held by another order still in time) or ``seat_not_for_sale`` (sold, not
    sellable here, or reserved for someone else), naming the seat."""
    zones: dict[int, int] = {}
    for seat_id in sorted(set(seat_ids)):
        got = conn.execute(sa.update(session_seats).where(
            session_seats.c.seat_id == seat_id,
            *_takeable(session_id, now, customer, order_id))
            .values(status="held", order_id=order_id, held_until=until)
            .returning(session_seats.c.zone_id)).first()
        if got is None:
            raise _refusal(conn, session_id, seat_id)
        zones[seat_id] = got.zone_id
    return zones


def _refusal(conn: sa.Connection, session_id: int, seat_id: int) -> InventoryError:
    row = conn.execute(sa.select(session_seats.c.status, session_seats.c.category).where(
        session_seats.c.session_id == session_id, session_seats.c.seat_id == seat_id)).first()
    if row is not None and row.category == "sellable" and row.status == "held":
        return InventoryError("seat_taken", seat_id=seat_id, field="seats")
    return InventoryError("seat_not_for_sale", seat_id=seat_id, field="seats")


def _runs(rows: list, n: int) -> list[list[int]]:
    """Every run of ``n`` seats whose positions follow on in one row, best (lowest total
    rank) first."""
    runs = []
    for _, members in groupby(rows, key=lambda r: r.row_key):
        members = list(members)
        for i in range(len(members) - n + 1):
            window = members[i:i + n]
            if window[-1].position - window[0].position == n - 1:
                runs.append((sum(r.rank for r in window), window[0].rank,
                             [r.seat_id for r in window]))
    return [seat_ids for *_, seat_ids in sorted(runs)]


def hold_best(conn: sa.Connection, session_id: int, zone_id: int, n: int, order_id: int,
              until: datetime, now: datetime, customer: str | None = None,
              category: str | None = None,
              not_categories: frozenset[str] = frozenset()) -> dict[int, int]:
    """Hold the best ``n`` adjacent seats in one row of a zone (of the venue-map ``category``
    if given, and of none of ``not_categories``); their zones by seat id. Raises ``sold_out``
    when the zone has fewer than ``n`` such seats left, ``no_adjacent_seats`` when it has
    them but not side by side."""
    takeable = _takeable(session_id, now, customer, order_id)
    if category is not None:
        takeable.append(session_seats.c.seat_id.in_(
            sa.select(seats.c.id).where(seats.c.category == category)))
    elif not_categories:
        takeable.append(session_seats.c.seat_id.not_in(
            sa.select(seats.c.id).where(seats.c.category.in_(sorted(not_categories)))))
    postgres = conn.dialect.name == "postgresql"
    for _ in range(SEARCH_ROUNDS):
        rows = conn.execute(sa.select(
            session_seats.c.seat_id, session_seats.c.row_key, session_seats.c.position,
            session_seats.c.rank).where(session_seats.c.zone_id == zone_id, *takeable)
            .order_by(session_seats.c.row_key, session_seats.c.position)).all()
        if len(rows) < n:
            raise InventoryError("sold_out", what=f"zone {zone_id}", count=n, field="zone_id")
        runs = _runs(rows, n)
        if not runs:
            raise InventoryError("no_adjacent_seats", zone_id=zone_id, count=n, field="zone_id")
        for seat_ids in runs:
            if _take_run(conn, session_id, seat_ids, takeable, order_id, until, postgres):
                return {seat_id: zone_id for seat_id in seat_ids}
        if not postgres:
            break
    raise InventoryError("sold_out", what=f"zone {zone_id}", count=n, field="zone_id")


def _take_run(conn: sa.Connection, session_id: int, seat_ids: list[int], takeable: list,
              order_id: int, until: datetime, postgres: bool) -> bool:
    """Hold all of a run or none of it."""
    seat_ids = sorted(seat_ids)
    savepoint = conn.begin_nested()
    if postgres:
        locked = conn.execute(sa.select(session_seats.c.seat_id).where(
            session_seats.c.seat_id.in_(seat_ids), *takeable)
            .order_by(session_seats.c.seat_id).with_for_update(skip_locked=True)).all()
        if len(locked) != len(seat_ids):
            savepoint.rollback()
            return False
    held = conn.execute(sa.update(session_seats).where(
        session_seats.c.seat_id.in_(seat_ids), *takeable)
        .values(status="held", order_id=order_id, held_until=until)).rowcount
    if held != len(seat_ids):
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def sell_held(conn: sa.Connection, session_id: int, order_id: int) -> int:
    """The order's held seats become sold (its payment arrived); how many."""
    return conn.execute(sa.update(session_seats).where(
        session_seats.c.session_id == session_id, session_seats.c.order_id == order_id,
        session_seats.c.status == "held").values(status="sold", held_until=None)).rowcount


def release_held(conn: sa.Connection, order_id: int) -> int:
    """The seats an order still holds go back on sale (it expired or was cancelled); seats
    another order has taken since are not its any more and stay as they are."""
    return conn.execute(sa.update(session_seats).where(
        session_seats.c.order_id == order_id, session_seats.c.status == "held")
        .values(status="available", order_id=None, held_until=None)).rowcount


def held_by(conn: sa.Connection, session_id: int, order_id: int) -> set[int]:
    """The seats the order holds (in time or not)."""
    return set(conn.execute(sa.select(session_seats.c.seat_id).where(
        session_seats.c.session_id == session_id, session_seats.c.order_id == order_id,
        session_seats.c.status == "held")).scalars())


def lapsed_orders(conn: sa.Connection, session_id: int, seat_ids: list[int],
                  now: datetime) -> set[int]:
    """The orders whose holds on these seats have passed their deadline."""
    if not seat_ids:
        return set()
    return set(conn.execute(sa.select(session_seats.c.order_id).where(
        session_seats.c.session_id == session_id, session_seats.c.seat_id.in_(seat_ids),
        session_seats.c.status == "held", session_seats.c.held_until < now)).scalars())
