"""The box office's basket: what a clerk picked at the counter (seats by their labels, a number
of general-admission tickets, passes), checked and priced for the clerk to confirm, then turned
into an :class:`~cloud.sales.order_plan.OrderRequest` for the one order path
(:func:`cloud.sales.orders.create_order`). Nothing here writes.

The prices shown before the order exists follow the order plan's rules (a seat priced by its
category's tier, otherwise by the tier the clerk chose); the order's own lines, priced by
:mod:`cloud.sales.order_plan`, are what the buyer pays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa

from cloud.catalog.tables import price_tiers, products, seats, sessions, zones
from cloud.core.audit import SYSTEM
from cloud.inventory.seat_plan import find_seats, seat_label
from cloud.inventory.seats import free, reservation_allows
from cloud.inventory.tables import session_seats
from cloud.sales.order_plan import LineRequest, OrderRequest

MAX_TICKETS = 50
MAX_COUNT = 50
_SPLIT = re.compile(r"[,;，；\n]+")


@dataclass(frozen=True)
class Line:
    """One ticket of the basket as the clerk sees it before the order exists."""

    kind: str  # seat, ga or pass
    label: str  # the seat's label, the zone's or the product's name
    amount: int | None  # None when the price is not known (a missing tier)
    currency: str
    seat_id: int | None = None
    zone_id: int = 0
    price_tier_id: int | None = None
    product_id: int | None = None


@dataclass
class Basket:
    """What was picked and, in ``problems``, what is wrong with it by form field (``seats``,
    ``seat_tier``, ``ga``, ``ga_tier``, ``ga_zone``, ``pass_<id>``, ``basket``), each a code
    and its parameters for the page to word (``seat_taken`` and ``seat_not_for_sale`` are the
    holds' own codes, :class:`~cloud.inventory.seats.InventoryError`)."""

    lines: list[Line] = field(default_factory=list)
    problems: dict[str, tuple[str, dict]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(line.amount or 0 for line in self.lines)

    @property
    def currency(self) -> str:
        return self.lines[0].currency if self.lines else "CNY"

    def refuse(self, where: str, code: str, **params) -> None:
        self.problems.setdefault(where, (code, params))


@dataclass(frozen=True)
class Picked:
    """The basket form as typed: seat labels, the tier for seats their category does not
    price, a general-admission count with its tier and zone, and pass counts by product."""

    seats: str = ""
    seat_tier: str = ""
    ga: str = ""
    ga_tier: str = ""
    ga_zone: str = ""
    passes: dict[int, str] = field(default_factory=dict)
    customer: str = ""  # seats reserved for this customer may be picked


def seat_labels(text: str) -> list[str]:
    """The labels typed or clicked into the seats box: separated by commas, semicolons or
    lines; blanks dropped; each once, in the order first given."""
    seen: dict[str, None] = {}
    for part in _SPLIT.split(text):
        label = re.sub(r"\s*-\s*", "-", part.strip())
        label = re.sub(r"\s+", "-", label)
        if label:
            seen.setdefault(label.upper(), None)
    return list(seen)


def _count(text: str) -> int | None:
    text = text.strip()
    if not text:
        return 0
    return int(text) if text.isdigit() and int(text) <= MAX_COUNT else None


def _id(text: str) -> int | None:
    return int(text) if text.strip().isdigit() and int(text) < 2**31 else None


def session_products(conn: sa.Connection, session_id: int) -> list:
    """The passes sold with a session: its event's products, and products whose scope names
    the session."""
    s = conn.execute(sa.select(sessions.c.event_id).where(sessions.c.id == session_id)).one()
    found = []
    for p in conn.execute(sa.select(products).order_by(products.c.code)):
        if p.event_id == s.event_id or (p.scope_kind == "sessions"
                                        and session_id in (p.scope or [])):
            found.append(p)
    return found


def tiers_of(conn: sa.Connection, session_id: int) -> list:
    return conn.execute(sa.select(price_tiers).where(price_tiers.c.session_id == session_id)
                        .order_by(price_tiers.c.amount.desc(), price_tiers.c.id)).all()


def make_basket(conn: sa.Connection, s, picked: Picked, now) -> Basket:
    """Check and price what the clerk picked for session ``s`` (a row with ``id``,
    ``venue_id``). A seat sold, held or not for sale now is refused here, naming it, so the
    clerk repicks before typing holders; the order itself decides in the end."""
    basket = Basket()
    tiers = {t.id: t for t in tiers_of(conn, s.id)}
    by_category = {t.seat_category: t for t in tiers.values() if t.seat_category}
    _seat_lines(conn, s, picked, tiers, by_category, now, basket)
    _ga_lines(conn, s, picked, tiers, basket)
    _pass_lines(conn, s, picked, basket)
    if not basket.lines and not basket.problems:
        basket.refuse("basket", "basket_empty")
    elif len(basket.lines) > MAX_TICKETS:
        basket.refuse("basket", "basket_too_large", limit=MAX_TICKETS)
    return basket


def _seat_lines(conn, s, picked: Picked, tiers, by_category, now, basket: Basket) -> None:
    labels = seat_labels(picked.seats)
    if not labels:
        return
    found, unknown = find_seats(conn, s.venue_id, labels)
    if unknown:
        basket.refuse("seats", "no_such_seats", seats=", ".join(unknown[:10]))
        return
    rows = {r.id: r for r in conn.execute(
        sa.select(seats.c.id, seats.c.level, seats.c.row, seats.c.number, seats.c.category,
                  session_seats.c.zone_id, session_seats.c.status,
                  session_seats.c.category.label("use"),
                  sa.and_(session_seats.c.category == "sellable", free(now),
                          reservation_allows(picked.customer.strip() or None, now)
                          ).label("open"))
        .join(session_seats, sa.and_(session_seats.c.seat_id == seats.c.id,
                                     session_seats.c.session_id == s.id))
        .where(seats.c.id.in_(list(found.values()))))}
    taken = [label for label in labels if not getattr(rows.get(found[label]), "open", False)]
    if taken:  # in the words of the hold's own refusal, naming the first seat by its label
        first = rows.get(found[taken[0]])
        held = first is not None and first.use == "sellable" and first.status == "held"
        basket.refuse("seats", "seat_taken" if held else "seat_not_for_sale",
                      seat_id=", ".join(taken[:10]))
        return
    chosen = tiers.get(_id(picked.seat_tier) or -1)
    for label in labels:
        r = rows.get(found[label])
        if r is None:  # a seat of the venue this session does not sell
            basket.refuse("seats", "seat_not_for_sale", seat_id=label)
            return
        tier = by_category.get(r.category)
        if tier is None:
            if tiers and chosen is None:
                basket.refuse("seat_tier", "tier_required")
            elif chosen is not None and chosen.seat_category:
                basket.refuse("seat_tier", "tier_prices_seats",
                              category=chosen.seat_category)
            tier = chosen
        basket.lines.append(Line(
            "seat", seat_label(r.level, r.row, r.number),
            tier.amount if tier is not None else (None if tiers else 0),
            tier.currency if tier is not None else "CNY", seat_id=r.id, zone_id=r.zone_id,
            price_tier_id=None if by_category.get(r.category) is not None
            else (tier.id if tier is not None else None)))


def _ga_lines(conn, s, picked: Picked, tiers, basket: Basket) -> None:
    n = _count(picked.ga)
    if n is None:
        basket.refuse("ga", "bad_count", limit=MAX_COUNT)
        return
    if not n:
        return
    zone_id = 0
    if picked.ga_zone.strip():
        zone = conn.execute(sa.select(zones.c.id, zones.c.name).where(
            zones.c.id == (_id(picked.ga_zone) or -1), zones.c.venue_id == s.venue_id)).first()
        if zone is None:
            basket.refuse("ga_zone", "unknown_zone")
            return
        zone_id = zone.id
    tier = tiers.get(_id(picked.ga_tier) or -1)
    if tiers and tier is None:
        basket.refuse("ga_tier", "tier_required")
        return
    if tier is not None and tier.seat_category:
        basket.refuse("ga_tier", "tier_prices_seats", category=tier.seat_category)
        return
    for _ in range(n):
        basket.lines.append(Line("ga", "", tier.amount if tier is not None else 0,
                                 tier.currency if tier is not None else "CNY",
                                 zone_id=zone_id,
                                 price_tier_id=tier.id if tier is not None else None))


def _pass_lines(conn, s, picked: Picked, basket: Basket) -> None:
    offered = {p.id: p for p in session_products(conn, s.id)}
    for product_id, text in sorted(picked.passes.items()):
        n = _count(text)
        if n is None or product_id not in offered:
            basket.refuse(f"pass_{product_id}", "bad_count", limit=MAX_COUNT)
            continue
        p = offered[product_id]
        basket.lines.extend(Line("pass", p.name, p.amount, p.currency, zone_id=p.zone_id,
                                 product_id=p.id) for _ in range(n))


def order_request(session_id: int, basket: Basket,
                  holders: list[tuple[str, str, str] | None], actor: str = SYSTEM,
                  customer: str | None = None) -> OrderRequest:
    """The order for a checked basket, one line per ticket with its holder (or None)."""
    return OrderRequest(session_id, tuple(
        LineRequest(kind=line.kind, seat_id=line.seat_id,
                    zone_id=line.zone_id if line.kind != "pass" else 0,
                    price_tier_id=line.price_tier_id, product_id=line.product_id, holder=h)
        for line, h in zip(basket.lines, holders, strict=True)), actor=actor,
        customer=customer or None)


def form_field(refusal_field: str | None, basket: Basket) -> str:
    """The basket or holder field a refusal of the order belongs beside: an order's refusal
    names its line (``lines.<i>.<field>``); the form has one holder per ticket
    (``holder_name_<i>``, ``doc_type_<i>``, ``doc_number_<i>``)."""
    m = re.fullmatch(r"lines\.(\d+)\.(.+)", refusal_field or "")
    if m is None:
        return {"session_id": "session", "customer": "customer"}.get(
            refusal_field or "", "basket")
    i, what = int(m.group(1)), m.group(2)
    line = basket.lines[i] if i < len(basket.lines) else None
    if what in ("holder.name", "holder"):
        return f"holder_name_{i}"
    if what.startswith("holder.doc_type"):
        return f"doc_type_{i}"
    if what.startswith("holder"):
        return f"doc_number_{i}"
    if line is None:
        return "basket"
    if line.kind == "pass":
        return f"pass_{line.product_id}"
    if what == "price_tier_id":
        return "seat_tier" if line.kind == "seat" else "ga_tier"
    if line.kind == "ga":
        return "ga_zone" if what == "zone_id" else "ga"
    return "seats"
