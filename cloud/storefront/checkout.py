"""A buyer's purchase on the public site, as rules: who a ticket may name (the buyer and their
companions, each once verified), the seats picked (chosen on the map, or the best adjacent
ones of a zone at a price), the order placed on the one order path
(:func:`cloud.sales.orders.create_order`: the seats and quotas held in its transaction, every
limit checked there), and the buyer's view of one of their orders.

An order placed here is the buyer's: ``orders.buyer`` is ``buyer:<id>`` (the per-buyer limits
count by it) and its audit names the buyer. Another buyer's order is not found, never
forbidden: its number says nothing to anyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.buyers import companions as comp
from cloud.buyers.accounts import profile
from cloud.buyers.identities import person
from cloud.buyers.own_identity import own_holder
from cloud.catalog.tables import seats, sessions, venues, zones
from cloud.channels.channels import storefront_channel
from cloud.channels.selling import sell_through
from cloud.core.errors import Code, HubError
from cloud.core.seal import keyring_for
from cloud.sales.holders import open_holder
from cloud.sales.order_plan import LineRequest, OrderError, OrderRequest
from cloud.sales.orders import shown_state
from cloud.sales.tables import holders, order_lines, orders, refund_requests, tickets
from sync.identity import mask_document, mask_name
from sync.timeutil import utcnow

MAX_TICKETS = 6  # tickets one order of the public site may hold
ME = "me"


class CheckoutError(HubError):
    """A purchase of the public site refused before it reaches the order rules."""

    codes = {
        "bad_pick": Code(422, "pick 1 to %(limit)s seats, or a zone, a price tier and a number "
                              "of tickets"),
        "unknown_holder": Code(422, "ticket %(line)s names nobody on your list"),
        "holder_twice": Code(422, "ticket %(line)s names someone another ticket names already"),
        "too_many_orders": Code(429, "at most %(limit)s orders an hour: try again later"),
    }


@dataclass(frozen=True)
class Person:
    """Someone a ticket may name, as the buyer's list shows them (masked)."""

    key: str  # "me", or "c<companion id>"
    name: str
    doc_type: str
    doc_number: str
    verification: str | None

    @property
    def verified(self) -> bool:
        return self.verification == "verified"


def people(conn: sa.Connection, buyer_id: int) -> list[Person]:
    """The buyer (once they named who they are) and their live companions, masked."""
    found = []
    me = profile(conn, buyer_id)
    if me.identity_id is not None:
        p = person(conn, me.identity_id)
        found.append(Person(ME, mask_name(p.name), p.doc_type,
                            mask_document(p.doc_number), p.state))
    for c in comp.list_companions(conn, buyer_id):
        found.append(Person(f"c{c.id}", c.name, c.doc_type, c.doc_number, c.verification))
    return found


def holder_for(conn: sa.Connection, buyer_id: int, key: str,
               line: int) -> tuple[str, str, str]:
    """The holder a ticket names: the buyer, or one of their companions, verified."""
    if key == ME:
        return own_holder(conn, buyer_id)
    if key.startswith("c") and key[1:].isdigit():
        try:
            return comp.holder(conn, buyer_id, int(key[1:]))
        except HubError as e:
            if e.code != "unknown_companion":
                raise
    raise CheckoutError("unknown_holder", line=line + 1, field=f"holder_{line}")


@dataclass(frozen=True)
class Pick:
    """One ticket asked for: a chosen seat, or a best-available seat of a zone at a tier."""

    seat_id: int | None = None
    zone_id: int = 0
    price_tier_id: int | None = None


def chosen_seats(conn: sa.Connection, session_id: int, seat_ids: list[int]) -> list[Pick]:
    """Seats picked on the map, each in its zone, in the map's order; ``bad_pick`` for none,
    too many, the same seat twice, or a seat of another venue."""
    unique = list(dict.fromkeys(seat_ids))
    if not 1 <= len(unique) <= MAX_TICKETS or len(unique) != len(seat_ids):
        raise CheckoutError("bad_pick", limit=MAX_TICKETS, field="seat")
    rows = conn.execute(sa.select(seats.c.id, seats.c.zone_id).join(
        sessions, sessions.c.venue_id == seats.c.venue_id).where(
        sessions.c.id == session_id, seats.c.id.in_(unique))).all()
    if len(rows) != len(unique):
        raise CheckoutError("bad_pick", limit=MAX_TICKETS, field="seat")
    zone_of = {r.id: r.zone_id for r in rows}
    return [Pick(seat_id=s, zone_id=zone_of[s]) for s in unique]


def best_available(zone_id: int, price_tier_id: int, quantity: int) -> list[Pick]:
    if not 1 <= quantity <= MAX_TICKETS:
        raise CheckoutError("bad_pick", limit=MAX_TICKETS, field="quantity")
    return [Pick(zone_id=zone_id, price_tier_id=price_tier_id)] * quantity


def place_order(conn: sa.Connection, buyer_id: int, session_id: int, picks: list[Pick],
                holder_keys: list[str], now: datetime | None = None):
    """Hold the picked seats for the buyer, each ticket naming its holder (None where the
    session is not real-name and nobody is chosen): the order made
    (:class:`cloud.sales.orders.Made`), or the order rules' refusal."""
    if len(holder_keys) != len(picks):
        raise CheckoutError("bad_pick", limit=MAX_TICKETS, field="holder")
    named: set[str] = set()
    for i, key in enumerate(holder_keys):
        if key and key in named:
            raise CheckoutError("holder_twice", line=i + 1, field=f"holder_{i}")
        named.add(key)
    lines = tuple(
        LineRequest(kind="seat", seat_id=p.seat_id, zone_id=p.zone_id,
                    price_tier_id=p.price_tier_id,
                    holder=holder_for(conn, buyer_id, key, i) if key else None)
        for i, (p, key) in enumerate(zip(picks, holder_keys, strict=True)))
    who = f"buyer:{buyer_id}"
    now = now or utcnow()
    # sold through the storefront's channel: refused while it is off or outside its window
    return sell_through(conn, storefront_channel(conn, now),
                        OrderRequest(session_id, lines, buyer=who, actor=who), now)


def seat_words(conn: sa.Connection, seat_ids: list[int]) -> dict[int, dict[str, str]]:
    """Each seat's zone name, level, row and number, as the buyer's pages say them."""
    rows = conn.execute(sa.select(seats.c.id, seats.c.level, seats.c.row, seats.c.number,
                                  zones.c.name.label("zone"))
                        .join(zones, zones.c.id == seats.c.zone_id)
                        .where(seats.c.id.in_(seat_ids))).all()
    return {r.id: {"zone": r.zone, "level": r.level, "row": r.row, "number": r.number}
            for r in rows}


def _holder_words(conn: sa.Connection, holder_ids: list[int]) -> dict[int, str]:
    ring = keyring_for(conn)
    found = conn.execute(sa.select(holders).where(holders.c.id.in_(set(holder_ids)))).all()
    shown = {}
    for row in found:
        h = open_holder(ring, row)
        shown[h.id] = f"{mask_name(h.name)} · {mask_document(h.doc_number)}"
    return shown


def buyer_order(conn: sa.Connection, buyer_id: int, number: str,
                now: datetime | None = None) -> dict[str, Any]:
    """One of the buyer's orders as they see it: its state now, deadline, lines (seat, price,
    holder masked) and, once paid, each ticket with its code; ``unknown_order`` for any
    order not theirs."""
    o = conn.execute(sa.select(orders).where(orders.c.number == number,
                                             orders.c.buyer == f"buyer:{buyer_id}")).first()
    if o is None:
        raise OrderError("unknown_order", order_id=number, field="number")
    lines = conn.execute(sa.select(order_lines).where(order_lines.c.order_id == o.id)
                         .order_by(order_lines.c.id)).all()
    issued = conn.execute(sa.select(tickets.c.id, tickets.c.number, tickets.c.code,
                                    tickets.c.state, tickets.c.seat_id, tickets.c.holder_id)
                          .where(tickets.c.order_id == o.id).order_by(tickets.c.id)).all()
    words = seat_words(conn, [x.seat_id for x in lines if x.seat_id is not None])
    tz = conn.execute(sa.select(venues.c.timezone).join(
        sessions, sessions.c.venue_id == venues.c.id).where(sessions.c.id == o.session_id)
    ).scalar() if o.session_id is not None else None
    people_ = _holder_words(conn, [x.holder_id for x in [*lines, *issued]
                                   if x.holder_id is not None])
    return {
        "id": o.id, "number": o.number, "state": shown_state(o, now), "total": o.total,
        "kind": o.kind,  # sale, or presale: a lottery application's, without lines at first
        "currency": o.currency, "expires_at": o.expires_at, "created_at": o.created_at,
        "session_id": o.session_id, "timezone": tz,
        "lines": [{"seat": words.get(x.seat_id), "amount": x.amount, "currency": x.currency,
                   "holder": people_.get(x.holder_id), "state": x.state} for x in lines],
        "tickets": [{"number": t.number, "code": t.code, "state": t.state,
                     "seat": words.get(t.seat_id), "holder": people_.get(t.holder_id)}
                    for t in issued],
    }



def refund_requests_of(conn: sa.Connection, order_id: int) -> list[sa.Row]:
    """The order's refund requests, newest first: state, amount, when."""
    r = refund_requests.c
    return conn.execute(sa.select(r.id, r.state, r.amount, r.currency, r.created_at)
                        .where(r.order_id == order_id).order_by(r.id.desc())).all()
