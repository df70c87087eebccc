"""Each session's seat configuration, and claiming seats when they are sold.

A session's configuration starts as a copy of the venue map (damaged seats as 'occupied',
removed seats left out). Editing it never touches the venue map; while the session is not on
sale, later changes to the venue map flow into it. Once the configuration is confirmed, only
emergency seats may change category. A seat is sold by a conditional UPDATE that succeeds for
one transaction only; the unique index on live tickets is the backstop. Orders hold seats first
(``cloud/inventory/holds.py``); a hold past its deadline counts as available here too.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from cloud.catalog.tables import seats, sessions
from cloud.core.audit import SYSTEM, record
from cloud.core.errors import Code, HubError
from cloud.inventory.places import venue_places
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
        "seat_taken": Code(409, "a seat already has a live ticket or hold for this session"),
        "sold_out": Code(409, "sold out: %(what)s has no room for %(count)s more"),
        "no_adjacent_seats": Code(
            409, "zone %(zone_id)s has no %(count)s adjacent seats left in one row"),
        "unknown_quota": Code(404, "no quota %(quota_id)s"),
        "bad_quota": Code(422, "a %(kind)s quota names %(needs)s and a capacity of 0 or more"),
        "quota_exists": Code(409, "there is a quota for %(key)s already"),
        "capacity_below_used": Code(
            409, "quota %(quota_id)s has %(used)s used: its capacity cannot go below that"),
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
        "reservation_name_kept": Code(
            422, "a name beginning %(prefix)s is kept for the hub's own reservations (a "
                 "contract customer's, a presale's): choose it from its page"),
        "unknown_session": Code(404, "no session %(session_id)s"),
        "not_confirmed": Code(409, "session %(session_id)s: confirm the seat configuration "
                                   "before the session goes on sale"),
        "unknown_event": Code(404, "no event %(event_id)s"),
        "session_ends_before_start": Code(422, "a session must end after it starts"),
        "gates_open_after_start": Code(422, "gates must open before the session starts"),
        "session_cancelled": Code(409, "session %(session_id)s is cancelled"),
        "not_editable": Code(422, "these session fields cannot be edited here: %(fields)s"),
        "bad_sale_window": Code(422, "a sale window must close after it opens"),
        "bad_limit": Code(422, "%(field)s must be a whole number of 1 or more"),
        "payment_minutes_too_long": Code(422, "an order waits at most %(high)s minutes for "
                                              "its payment"),
        "bad_session_name": Code(422, "a session's name is 1 to 200 characters"),
    }


def _utc(dt):
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def copy_venue_map(conn: sa.Connection, session_id: int, venue_id: int) -> int:
    """Give a session the venue's seats it does not have yet, each with its zone, row,
    position and rank (``cloud/inventory/places.py``); returns how many. When seats were
    added, the places of the session's other seats are brought up to date too."""
    have = sa.select(session_seats.c.seat_id).where(session_seats.c.session_id == session_id)
    new = conn.execute(sa.select(seats.c.id, seats.c.damaged, seats.c.category).where(
        seats.c.venue_id == venue_id, seats.c.removed.is_(False),
        seats.c.id.not_in(have))).all()
    if not new:
        return 0
    where = venue_places(conn, venue_id)
    rows = [{"session_id": session_id, "seat_id": r.id,
             "category": "occupied" if r.damaged else "sellable", "status": "available",
             "zone_id": where[r.id].zone_id, "row_key": where[r.id].row_key,
             "position": where[r.id].position, "rank": where[r.id].rank,
             "price_category": r.category} for r in new]
    added = {r.id for r in new}
    old = [{"sid": session_id, "seat": seat_id, "z": p.zone_id, "rk": p.row_key,
            "p": p.position, "r": p.rank}
           for seat_id, p in where.items() if seat_id not in added]
    if old:
        conn.execute(sa.update(session_seats).where(
            session_seats.c.session_id == sa.bindparam("sid"),
            session_seats.c.seat_id == sa.bindparam("seat")).values(
            zone_id=sa.bindparam("z"), row_key=sa.bindparam("rk"),
            position=sa.bindparam("p"), rank=sa.bindparam("r")), old)
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


def follow_seat_categories(conn: sa.Connection, categories: dict[int, str]) -> None:
    """The venue map gave these seats these categories: every session's copy of each
    (``price_category``), on sale or not, follows, as the seat's price does."""
    if categories:
        conn.execute(sa.update(session_seats).where(
            session_seats.c.seat_id == sa.bindparam("seat")).values(
            price_category=sa.bindparam("price")),
            [{"seat": seat_id, "price": category} for seat_id, category in categories.items()])


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
    s = conn.execute(sa.select(sessions.c.on_sale, sessions.c.config_confirmed_at,
                               sessions.c.state)
                     .where(sessions.c.id == session_id).with_for_update()).first()
    if s is None:
        raise InventoryError("unknown_session", session_id=session_id)
    if s.state == "cancelled":
        raise InventoryError("session_cancelled", session_id=session_id)
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


# reservations the hub makes itself: a contract customer's (cloud/channels/), a presale's
# (cloud/lottery/); a name typed by staff may not take their form
KEPT_PREFIXES = ("customer:", "presale:")


def typed_customer(name: str | None) -> str | None:
    """A customer's name as staff typed it (to reserve seats for, or to sell seats reserved
    for): refused when it takes the form of the hub's own reservations."""
    if isinstance(name, str):
        for prefix in KEPT_PREFIXES:
            if name.strip().lower().startswith(prefix):
                raise InventoryError("reservation_name_kept", prefix=prefix,
                                     field="customer")
    return name


def reservation_allows(customer: str | None, now: datetime) -> sa.ColumnElement[bool]:
    """The seats this customer (or anyone, for None) may take: not reserved, a reservation
    that has ended, or one for this customer."""
    free_for_all = sa.or_(session_seats.c.reserved_for.is_(None),
                          session_seats.c.reserved_until < now)
    return free_for_all if customer is None else sa.or_(
        free_for_all, session_seats.c.reserved_for == customer)


def word(value: str) -> sa.ColumnElement[str]:
    """One of the hub's own words (a seat's status or use) written into a statement, not
    bound as a parameter: a prepared statement's plan then knows which it is, as it knows
    nothing of a parameter's value."""
    if not value.isidentifier():
        raise ValueError(f"not a word: {value!r}")
    return sa.literal_column(f"'{value}'", sa.String)


def free(now: datetime, order_id: int | None = None) -> sa.ColumnElement[bool]:
    """A seat that can be taken now: available, held past its deadline (lazy expiry: the
    hold stops counting at once), or held by ``order_id`` itself."""
    lapsed = sa.and_(session_seats.c.status == word("held"), session_seats.c.held_until < now)
    ours = () if order_id is None else (sa.and_(session_seats.c.status == word("held"),
                                                session_seats.c.order_id == order_id),)
    return sa.or_(session_seats.c.status == word("available"), lapsed, *ours)


def claim(conn: sa.Connection, session_id: int, seat_id: int, customer: str | None,
          now: datetime) -> None:
    """Mark a seat sold for this session, or raise: the UPDATE succeeds for one caller only."""
    got = conn.execute(sa.update(session_seats).where(
        session_seats.c.session_id == session_id, session_seats.c.seat_id == seat_id,
        free(now), session_seats.c.category == "sellable", reservation_allows(customer, now))
        .values(status="sold", order_id=None, held_until=None)
        .returning(session_seats.c.seat_id)).first()
    if got is None:
        raise InventoryError("seat_not_for_sale", seat_id=seat_id)


def release(conn: sa.Connection, session_id: int, seat_id: int) -> None:
    conn.execute(sa.update(session_seats).where(
        session_seats.c.session_id == session_id, session_seats.c.seat_id == seat_id)
        .values(status="available", order_id=None, held_until=None))


def keep_free_seats(conn: sa.Connection, session_id: int, category: str | None,
                    customer: str, until: datetime, now: datetime) -> int:
    """Reserve every sellable seat of a session that is free now and not kept for anyone
    (of one venue seat category, when given) for ``customer`` until ``until``; how many."""
    cond = [session_seats.c.session_id == session_id, session_seats.c.category == "sellable",
            free(now), reservation_allows(None, now)]
    if category is not None:
        cond.append(session_seats.c.seat_id.in_(
            sa.select(seats.c.id).where(seats.c.category == category)))
    return conn.execute(sa.update(session_seats).where(*cond).values(
        reserved_for=customer, reserved_until=until)).rowcount


def end_reservations(conn: sa.Connection, customer: str) -> int:
    """The seats kept for ``customer`` and not sold go back to everyone; how many."""
    return conn.execute(sa.update(session_seats).where(
        session_seats.c.reserved_for == customer, session_seats.c.status != "sold")
        .values(reserved_for=None, reserved_until=None)).rowcount
