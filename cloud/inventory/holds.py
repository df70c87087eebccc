"""Holding a session's seats for an order until its payment deadline, and selling or releasing
them.

A hold is a conditional UPDATE of the seat's row (``available`` -> ``held``, naming the order
and its deadline) that succeeds for one transaction only; seats are taken in key order so two
orders never wait on each other in a circle. A hold past its deadline counts as available in
every predicate here (lazy expiry: no job has to run for a seat to return to sale); the row
keeps naming the lapsed order until someone takes the seat or the order is tidied.

Best-available looks for ``n`` adjacent seats of one row of a zone (``position`` follows on,
lowest total ``rank`` first). The database finds the candidate runs (:func:`best_runs`: gaps
and islands over each row's takeable seats, a few at a time), so an order reads a handful of
rows, not the zone. A single seat is looked for in each way a seat is free by an index of its
own (the free seats in rank order, the lapsed holds by deadline, the order's own holds), so
its cost does not grow with the zone, and is found and held in one statement. A run is
taken by one conditional UPDATE; on PostgreSQL its rows are locked with
``FOR UPDATE SKIP LOCKED`` inside it, so concurrent buyers skip each other's runs instead of
queueing on them, and a run that comes back short is let go (a savepoint, for more than one
seat, is rolled back, which releases its row locks). A buyer who lost the best run tries the other candidates in random order, so losers
spread over the next-best runs instead of all racing for the same one. SQLite has one writer
at a time, so the first run read is free.
"""

from __future__ import annotations

import random
from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa

from cloud.inventory.seats import InventoryError, free, reservation_allows, word
from cloud.inventory.tables import session_seats

SEARCH_ROUNDS = 3
CANDIDATES = 16  # runs read per round (16, 64, 256)
SEAT_CANDIDATES = 8  # a single seat's first try: past as many buyers taking seats at once
_chance = random.Random()


def takeable_seats(session_id: int, now: datetime, customer: str | None = None,
                   order_id: int | None = None) -> list[sa.ColumnElement[bool]]:
    """The session's seats this customer (or anyone) may hold now for this order (or any):
    sellable, free (a lapsed hold is free) and not reserved for someone else."""
    return [session_seats.c.session_id == session_id,
            session_seats.c.category == word("sellable"), free(now, order_id),
            reservation_allows(customer, now)]


def hold_seats(conn: sa.Connection, session_id: int, seat_ids: list[int], order_id: int,
               until: datetime, now: datetime, customer: str | None = None) -> dict[int, int]:
    """Hold the chosen seats for an order until ``until``; their zones by seat id. Raises
    ``seat_taken`` (held by another order still in time) or ``seat_not_for_sale`` (sold, not
    sellable here, or reserved for someone else), naming the seat."""
    zones: dict[int, int] = {}
    for seat_id in sorted(set(seat_ids)):
        got = conn.execute(sa.update(session_seats).where(
            session_seats.c.seat_id == seat_id,
            *takeable_seats(session_id, now, customer, order_id))
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


def best_runs(conn: sa.Connection, zone_id: int, n: int, takeable: list,
              limit: int = CANDIDATES, ways: list | None = None) -> list[tuple[str, int]]:
    """Up to ``limit`` runs of ``n`` takeable seats of a zone whose positions follow on in one
    row, best first (lowest total rank, then the better first seat), each as its row and first
    position; chosen by the database, not by reading the zone's seats. ``ways``
    (:func:`free_ways`) lets a single seat be looked for in each way a seat is free by its own
    index, best first, instead of in one pass over the zone's takeable seats. (:func:`hold_best`
    runs the same statement, built once per shape by :func:`_prepared`.)"""
    return [(r.row_key, r.position)
            for r in conn.execute(_runs_query(zone_id, n, takeable, limit, ways))]


def free_ways(now: datetime, order_id: int | None = None) -> list[sa.ColumnElement[bool]]:
    """The ways a seat is free (:func:`cloud.inventory.seats.free`), one by one: available;
    held past its deadline; named by ``order_id`` (held by it, with ``free``, which every
    search also asks: said by the order alone, its index is the one read)."""
    ss = session_seats.c
    ways = [ss.status == word("available"),
            sa.and_(ss.status == word("held"), ss.held_until < now)]
    if order_id is not None:
        ways.append(ss.order_id == order_id)
    return ways


def _rows(n: int) -> sa.ColumnElement[int]:
    """A LIMIT written into the statement: bound as a parameter, a prepared statement's plan
    takes it for a tenth of the rows and reads a zone to sort it."""
    return sa.literal_column(str(int(n)), sa.Integer)


def _best_of_each_way(columns: list, zone_id, takeable: list, ways: list,
                      limit: int) -> list[sa.Subquery]:
    """The best ``limit`` seats of a zone in each way a seat is free (:func:`free_ways`). The
    available ones are read in rank order by ``ix_session_seats_best``, stopping at the
    first few. The held ones (lapsed, or the order's own) are few: they are found by their
    own index (``…_lapsing``, ``…_order_id``) and sorted, ordered by ``rank + 0``, which no
    index gives; by ``rank`` the planner would walk every held seat of the zone in rank order
    looking for a lapsed one."""
    ss = session_seats.c
    return [sa.select(*columns).where(ss.zone_id == zone_id, *takeable, way).order_by(
        ss.rank if i == 0 else ss.rank + sa.literal_column("0"), ss.row_key, ss.position)
        .limit(_rows(limit)).subquery() for i, way in enumerate(ways)]


def _runs_query(zone_id, n: int, takeable: list, limit: int, ways: list | None) -> sa.Select:
    """:func:`best_runs`' statement. A single seat: the best of each way a seat is free
    (indexes ``ix_session_seats_best`` and ``…_lapsing``), then the best of those. More:
    gaps and islands in one pass over each row's takeable seats in position order: the seat
    ``n - 1`` places further on is at ``position + n - 1`` exactly when no seat in between is
    missing, and the run's total rank is the difference of two running sums."""
    ss = session_seats.c
    if n == 1:
        order = (ss.rank, ss.row_key, ss.position)
        if not ways:
            return sa.select(ss.row_key, ss.position).where(ss.zone_id == zone_id, *takeable) \
                .order_by(*order).limit(_rows(limit))
        each = _best_of_each_way([ss.row_key, ss.position, ss.rank], zone_id, takeable, ways,
                                 limit)
        best = sa.union(*(sa.select(*e.c) for e in each)).subquery("best")  # a seat once
        return sa.select(best.c.row_key, best.c.position) \
            .order_by(best.c.rank, best.c.row_key, best.c.position).limit(_rows(limit))
    row = {"partition_by": ss.row_key, "order_by": ss.position}
    summed = sa.select(ss.row_key, ss.position, ss.rank,
                       sa.func.sum(ss.rank).over(**row, rows=(None, 0)).label("upto")).where(
        ss.zone_id == zone_id, *takeable).subquery("summed")
    t = summed.c
    ahead = {"partition_by": t.row_key, "order_by": t.position}
    runs = sa.select(t.row_key, t.position, t.rank,
                     sa.func.lead(t.position, n - 1).over(**ahead).label("last"),
                     (sa.func.lead(t.upto, n - 1).over(**ahead) - t.upto + t.rank)
                     .label("total")).subquery("runs")
    r = runs.c
    return sa.select(r.row_key, r.position).where(r.last == r.position + (n - 1)) \
        .order_by(r.total, r.rank, r.row_key, r.position).limit(_rows(limit))


def _take_query(zone_id, n: int, row_key, first, takeable: list, order_id, until,
                postgres: bool) -> sa.Update:
    """Hold all of a run (its row and first position) or none of it: on PostgreSQL its rows
    are locked first with ``SKIP LOCKED`` (a run another buyer is taking comes back short)."""
    ss = session_seats.c
    where = [ss.zone_id == zone_id, ss.row_key == row_key,
             ss.position.between(first, first + n - 1), *takeable]
    if postgres:
        free_now = sa.select(ss.session_id, ss.seat_id).where(*where) \
            .with_for_update(skip_locked=True)
        where = [sa.tuple_(ss.session_id, ss.seat_id).in_(free_now), *takeable]
    return sa.update(session_seats).where(*where).values(
        status="held", order_id=order_id, held_until=until).returning(ss.seat_id)


def _take_best_query(zone, takeable: list, ways: list, limit: int, order_id,
                     until) -> sa.Update:
    """A single seat found and held in one statement: the best of the candidates
    :func:`_runs_query` reads (the best ``limit`` of each way a seat is free) that is still
    takeable; on PostgreSQL the first not locked by another buyer (``SKIP LOCKED``), so that
    concurrent buyers take the next candidates instead of queueing on the best. The UPDATE
    checks the seat once more, locked: one that stopped being takeable is not held."""
    ss = session_seats.c
    order = (ss.rank, ss.row_key, ss.position)
    each = _best_of_each_way([ss.seat_id], zone, takeable, ways, limit)
    candidates = sa.union(*(sa.select(*e.c) for e in each))
    # a scalar subquery runs once (as ``IN``, PostgreSQL may run it again per row, each run
    # locking and giving another seat)
    best = sa.select(ss.seat_id).where(ss.seat_id.in_(candidates), *takeable) \
        .order_by(*order).limit(_rows(1)).with_for_update(skip_locked=True).scalar_subquery()
    return sa.update(session_seats).where(ss.seat_id == best, *takeable).values(
        status="held", order_id=order_id, held_until=until).returning(ss.seat_id)


@lru_cache(maxsize=512)
def _prepared(what: str, n: int, limit: int, customer: bool, seats_of: str,
              postgres: bool) -> sa.Executable:
    """A best-available statement built once per shape, with bound parameters (``sid``,
    ``now``, ``oid``, ``zone``, ``customer``, ``seat_category`` or ``seat_categories``; to
    take a run ``in_row``, ``first``, ``until``; to take the best seat ``until``): built
    afresh, it cost more CPU than it ran for."""
    oid = sa.bindparam("oid", type_=sa.Integer)
    now = sa.bindparam("now", type_=session_seats.c.held_until.type)
    sid = sa.bindparam("sid", type_=sa.Integer)
    takeable = takeable_seats(sid, now,
                              sa.bindparam("customer", type_=sa.String) if customer else None,
                              oid)
    _of_categories(takeable,
                   sa.bindparam("seat_category") if seats_of == "category" else None,
                   sa.bindparam("seat_categories", expanding=True) if seats_of == "not"
                   else None)
    zone = sa.bindparam("zone", type_=sa.Integer)
    until = sa.bindparam("until", type_=session_seats.c.held_until.type)
    if what == "runs":
        return _runs_query(zone, n, takeable, limit, free_ways(now, oid))
    if what == "best":
        return _take_best_query(zone, takeable, free_ways(now, oid), limit, oid, until)
    return _take_query(zone, n, sa.bindparam("in_row", type_=sa.String),
                       sa.bindparam("first", type_=sa.Integer), takeable, oid, until,
                       postgres)


def _refuse_best(conn: sa.Connection, zone_id: int, n: int, takeable: list) -> InventoryError:
    left = conn.execute(sa.select(sa.func.count()).select_from(session_seats).where(
        session_seats.c.zone_id == zone_id, *takeable)).scalar_one()
    if left < n:
        return InventoryError("sold_out", what=f"zone {zone_id}", count=n, field="zone_id")
    return InventoryError("no_adjacent_seats", zone_id=zone_id, count=n, field="zone_id")


def _spread(runs: list[tuple[str, int]], first_round: bool) -> list[tuple[str, int]]:
    """The order to try runs in: the best first; once a buyer has lost a run to another
    (every later try, and every later round), the rest at random, so that concurrent losers
    do not all queue for the same next-best run."""
    head, rest = (runs[:1], runs[1:]) if first_round else ([], list(runs))
    _chance.shuffle(rest)
    return head + rest


def hold_best(conn: sa.Connection, session_id: int, zone_id: int, n: int, order_id: int,
              until: datetime, now: datetime, customer: str | None = None,
              category: str | None = None,
              not_categories: frozenset[str] = frozenset()) -> dict[int, int]:
    """Hold the best ``n`` adjacent seats in one row of a zone (of the venue-map ``category``
    if given, and of none of ``not_categories``); their zones by seat id. Raises ``sold_out``
    when the zone has fewer than ``n`` such seats left, ``no_adjacent_seats`` when it has
    them but not side by side."""
    seats_of = "category" if category is not None else "not" if not_categories else ""
    shape = (customer is not None, seats_of, conn.dialect.name == "postgresql")
    params = {"sid": session_id, "now": now, "oid": order_id, "zone": zone_id,
              **({"customer": customer} if customer is not None else {}),
              **({"seat_category": category} if category is not None else
                 {"seat_categories": sorted(not_categories)} if not_categories else {})}
    postgres = shape[2]
    if n == 1:  # the common case, in one statement; when no candidate is left, as for more
        got = conn.execute(_prepared("best", 1, SEAT_CANDIDATES, *shape),
                           {**params, "until": until}).scalar()
        if got is not None:
            return {got: zone_id}
    tried: set[tuple[str, int]] = set()
    for round_ in range(SEARCH_ROUNDS):
        runs = [(r.row_key, r.position) for r in conn.execute(
            _prepared("runs", n, CANDIDATES * 4 ** round_, *shape), params)]
        if not runs:
            raise _refuse_best(conn, zone_id, n, _takeable_for(
                session_id, now, customer, order_id, category, not_categories))
        for run in _spread([r for r in runs if r not in tried], round_ == 0):
            tried.add(run)
            take = {**params, "in_row": run[0], "first": run[1], "until": until}
            seat_ids = _take_run(conn, _prepared("take", n, 0, *shape), take, n)
            if seat_ids:
                return {seat_id: zone_id for seat_id in seat_ids}
        if not postgres:
            break
    raise InventoryError("sold_out", what=f"zone {zone_id}", count=n, field="zone_id")


def _takeable_for(session_id: int, now: datetime, customer: str | None, order_id: int,
                  category: str | None, not_categories: frozenset[str]) -> list:
    return _of_categories(takeable_seats(session_id, now, customer, order_id), category,
                          sorted(not_categories) if not_categories else None)


def _of_categories(takeable: list, category, not_categories) -> list:
    """``takeable`` narrowed to the seats of a venue-map category, or of none of several
    (values, or the parameters that will carry them), by the session's copy of each seat's
    category: a column PostgreSQL keeps statistics on. (Read from the seat by its key, the
    planner guessed one seat in two hundred matched and read a whole zone to sort it.)"""
    if category is not None:
        takeable.append(session_seats.c.price_category == category)
    elif not_categories is not None:
        takeable.append(session_seats.c.price_category.not_in(not_categories))
    return takeable


def _take_run(conn: sa.Connection, take: sa.Update, params: dict, n: int) -> list[int]:
    """Hold all of a run or none of it (:func:`_take_query`): the seats held, or []. A single
    seat needs no savepoint: it is held or not."""
    savepoint = conn.begin_nested() if n > 1 else None
    held = conn.execute(take, params).scalars().all()
    if len(held) != n:
        if savepoint is not None:
            savepoint.rollback()
        return []
    if savepoint is not None:
        savepoint.commit()
    return sorted(held)


_SELL_HELD = sa.update(session_seats).where(
    session_seats.c.session_id == sa.bindparam("sid"),
    session_seats.c.order_id == sa.bindparam("oid"), session_seats.c.status == "held"
).values(status="sold", held_until=None)


def sell_held(conn: sa.Connection, session_id: int, order_id: int) -> int:
    """The order's held seats become sold (its payment arrived); how many."""
    return conn.execute(_SELL_HELD, {"sid": session_id, "oid": order_id}).rowcount


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
