"""What an order asks for, checked and priced before anything is held: the session on sale
(state, flag and sale window), each line's price (a seat's from its category, general
admission's and a pass's from their tier or product, each within its own sale window), the
quotas each line counts against, and each holder's document (normalised and hashed).

Nothing here writes; :mod:`cloud.sales.holding` takes what the plan names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cloud.catalog.tables import (
    events,
    price_tiers,
    product_parts,
    products,
    seats,
    sessions,
    zones,
)
from cloud.core.audit import SYSTEM
from cloud.core.db import per_dialect
from cloud.core.errors import Code, HubError
from cloud.core.seal import keyring_for
from cloud.inventory.quotas import ids_of_listed_keys, quota_ids, quota_key, scoped_key
from cloud.inventory.tables import session_seats
from cloud.sales.tickets import TicketError, normal_document
from sync.timeutil import CHINA

MAX_LINES = 100
MAX_HOLDER_NAME = 200
MAX_BUYER = 80


class OrderError(HubError):
    """An order that cannot be created, paid, cancelled or expired as asked; ``field`` says
    which part of the request is at fault."""

    codes = {
        "unknown_session": TicketError.codes["unknown_session"],
        "not_on_sale": TicketError.codes["not_on_sale"],
        "tier_required": TicketError.codes["tier_required"],
        "tier_not_for_session": TicketError.codes["tier_not_for_session"],
        "unknown_zone": TicketError.codes["unknown_zone"],
        "holder_name_missing": TicketError.codes["holder_name_missing"],
        "holder_name_bad": TicketError.codes["holder_name_bad"],
        "unknown_seat": TicketError.codes["unknown_seat"],
        "bad_order_lines": Code(422, "an order has 1 to %(limit)s lines of kind seat, ga or "
                                     "pass"),
        "bad_buyer": Code(422, "a buyer reference is 1 to 80 printable characters"),
        "seat_on_other_line": Code(422, "only a line of kind seat names a seat"),
        "seat_twice": Code(422, "seat %(seat_id)s is asked for twice in one order"),
        "session_cancelled": Code(409, "session %(session_id)s is cancelled"),
        "tier_not_on_sale": Code(409, "price tier %(tier_id)s is not on sale now"),
        "tier_not_for_seat": Code(
            422, "seat %(seat_id)s is priced by tier %(price_tier_id)s (its category "
                 "%(category)s), not by tier %(tier_id)s"),
        "tier_prices_seats": Code(
            422, "price tier %(tier_id)s prices seats of category %(category)s, not general "
                 "admission"),
        "no_general_admission": Code(
            409, "session %(session_id)s sells no general admission here (no capacity is set)"),
        "unknown_product": Code(404, "no product %(product_id)s"),
        "product_not_on_sale": Code(409, "product %(product_id)s is not on sale now"),
        "day_required": Code(422, "product %(product_id)s is sold by the day: name the day"),
        "day_not_on_sale": Code(409, "product %(product_id)s is not on sale for %(day)s"),
        "holder_required": Code(422, "session %(session_id)s is real-name: every ticket names "
                                     "its holder"),
        "mixed_currency": Code(422, "an order is paid in one currency"),
        "document_already_used": Code(
            409, "this document already has a ticket (or one held) for session "
                 "%(session_id)s"),
        "limit_reached": Code(409, "the limit of %(limit)s tickets per %(per)s is reached"),
        "unknown_order": Code(404, "no order %(order_id)s"),
        "order_not_pending": Code(409, "order %(order_id)s is %(state)s, not waiting for "
                                       "payment"),
        "bad_topup_amount": Code(400, "an online top-up is from 0.01 up to %(limit)s yuan"),
    }


@dataclass(frozen=True)
class LineRequest:
    """One ticket asked for: a chosen seat (``seat_id``), a best-available seat of a zone
    (kind ``seat`` with ``zone_id`` and no seat: the order's lines of one zone and tier get
    adjacent seats of one row), general admission (``ga``, optionally of a zone) or a pass
    (``pass``, naming its ``product_id``: a pass, a day product on its ``day``, or a bundle,
    whose parts become lines). ``holder`` is (name, document type, number). ``amount`` is an
    agreed price (a partner's, set by the channels area only: never from a request)."""

    kind: str = "seat"
    seat_id: int | None = None
    zone_id: int = 0
    price_tier_id: int | None = None
    product_id: int | None = None
    holder: tuple[str, str, str] | None = None
    day: date | None = None
    amount: int | None = None


@dataclass(frozen=True)
class OrderRequest:
    """An order: lines for one session (or passes only, without a session), bought by a
    ``buyer`` (a storefront reference; None for a booth or staff sale, which ``actor``
    names). ``customer`` may take seats reserved for that name. ``channel_id`` is where it is
    sold (cloud/channels/), ``quota_scopes`` the channel's quotas each line also counts
    against where they exist (``chan:<id>``, ``contract``: cloud/inventory/quotas.py
    ``scoped_key``). ``payment_minutes``: how long it is held for its payment, when the
    channel's terms say otherwise than the session (a contract customer's bank transfer)."""

    session_id: int | None
    lines: tuple[LineRequest, ...]
    buyer: str | None = None
    actor: str = SYSTEM
    customer: str | None = None
    channel_id: int | None = None
    quota_scopes: tuple[str, ...] = ()
    payment_minutes: int | None = None  # the hold, when not the session's (1 to 30 days)
    sold_via: str | None = None  # how the ledger names the channel (cloud/channels/selling.py)


@dataclass
class PlannedLine:
    kind: str
    session_id: int | None
    seat_id: int | None
    zone_id: int
    price_tier_id: int | None
    product_id: int | None
    amount: int
    currency: str
    holder: tuple[str, str, str] | None
    holder_hash: str | None
    doc_hash: str | None
    quota_keys: list[str] = field(default_factory=list)
    category: str | None = None  # best-available: seats of this category only
    priced: frozenset[str] = frozenset()  # best-available at an open tier: not these
    day: date | None = None


class EventLimits(NamedTuple):
    """What an order's plan needs of the session's event: its purchase limits."""

    id: int
    buyer_limit: int | None
    holder_limit: int | None


@dataclass
class Plan:
    session: object | None
    event: EventLimits | None
    lines: list[PlannedLine]
    total: int
    currency: str
    quotas: dict[str, int]

    def quota_needs(self) -> dict[int, int]:
        needs: dict[int, int] = {}
        for line in self.lines:
            for key in line.quota_keys:
                needs[self.quotas[key]] = needs.get(self.quotas[key], 0) + 1
        return needs


def _open(opens: datetime | None, closes: datetime | None, now: datetime) -> bool:
    return (opens is None or opens <= now) and (closes is None or now < closes)


class Tier(NamedTuple):
    """What an order's plan needs of a price tier."""

    id: int
    amount: int
    currency: str
    seat_category: str | None
    sale_opens_at: datetime | None
    sale_closes_at: datetime | None


_TIER_COLUMNS = [price_tiers.c[name].label(f"tier_{name}") for name in Tier._fields]


# what an order's plan, holds and deadline need of its session
_SESSION_COLUMNS = ("id", "event_id", "venue_id", "state", "on_sale", "sale_opens_at",
                    "sale_closes_at", "real_name", "buyer_limit", "holder_limit",
                    "payment_minutes")


def _session_statement(dialect) -> sa.Select:
    """The session with its event's limits, its venue's zones (their ids, comma-separated),
    the quotas of the keys ``quota_keys`` names (a JSON list; ``key=id``, comma-separated)
    and its price tiers, in one statement: a row per tier (one with no tier if it has none)."""
    def joined(values):
        return sa.func.string_agg(values, ",") if dialect is postgresql else \
            sa.func.group_concat(values, ",")
    zone_ids = sa.select(joined(sa.cast(zones.c.id, sa.String))).where(
        zones.c.venue_id == sessions.c.venue_id).scalar_subquery().label("zone_ids")
    named = ids_of_listed_keys(dialect, sa.bindparam("quota_keys", type_=sa.String)).subquery()
    quota_ids = sa.select(joined(named.c.key + "=" + sa.cast(named.c.id, sa.String))) \
        .scalar_subquery().label("quota_ids")
    return sa.select(*(sessions.c[name] for name in _SESSION_COLUMNS),
                     events.c.buyer_limit.label("event_buyer_limit"),
                     events.c.holder_limit.label("event_holder_limit"), zone_ids, quota_ids,
                     *_TIER_COLUMNS).join(
        events, events.c.id == sessions.c.event_id).outerjoin(
        price_tiers, price_tiers.c.session_id == sessions.c.id).where(
        sessions.c.id == sa.bindparam("session_id"))


_SESSION = per_dialect(_session_statement)
_SEATS = sa.select(seats.c.id, seats.c.category, session_seats.c.zone_id).join(
    session_seats, sa.and_(session_seats.c.seat_id == seats.c.id,
                           session_seats.c.session_id == sa.bindparam("session_id"))
).where(seats.c.id.in_(sa.bindparam("wanted", expanding=True)))


def _session(conn: sa.Connection, req: OrderRequest, now: datetime) -> tuple[
        sa.Row, list[Tier], dict[str, int | None]]:
    """The session on sale (its row, with its event's limits and its zones' ids), its price
    tiers, and the quotas the request names outright (:func:`_named_quotas`): their ids by
    key, None for a key with no quota."""
    session_id, asked = req.session_id, _named_quotas(req)
    rows = conn.execute(_SESSION(conn), {"session_id": session_id,
                                         "quota_keys": json.dumps(asked)}).all()
    if not rows:
        raise OrderError("unknown_session", session_id=session_id, field="session_id")
    s = rows[0]
    if s.state == "cancelled":
        raise OrderError("session_cancelled", session_id=session_id, field="session_id")
    if not s.on_sale or not _open(s.sale_opens_at, s.sale_closes_at, now):
        raise OrderError("not_on_sale", session_id=session_id, field="session_id")
    found = dict(pair.split("=") for pair in s.quota_ids.split(",")) if s.quota_ids else {}
    return s, [Tier(*r[-len(Tier._fields):]) for r in rows if r.tier_id is not None], {
        key: int(found[key]) if key in found else None for key in asked}


def _named_quotas(req: OrderRequest) -> list[str]:
    """The keys of the quotas an order's lines of the session name outright: by the zone and
    tier a line asks for (a chosen seat's come from the seat, and a pass's from its product:
    :func:`plan_order` reads those once it knows them)."""
    keys = set()
    for line in req.lines:
        if line.kind == "pass" or line.seat_id is not None:
            continue
        tier = line.price_tier_id if isinstance(line.price_tier_id, int) else None
        keys.update(_line_quota_keys(line.kind, req.session_id, line.zone_id, tier))
        if line.kind == "ga":
            keys.add(quota_key("ga", req.session_id, 0))  # the session's (:func:`_ga_fallbacks`)
        keys.update(scoped_key(scope, req.session_id, tier) for scope in req.quota_scopes)
    return sorted(keys)


def _line_quota_keys(kind: str, session_id: int, zone_id: int, tier_id: int | None) -> list[str]:
    """The quotas a seat or general-admission line of a session counts against, where they
    exist: its zone's (seats) or its zone's general admission, and its tier's."""
    keys = [quota_key("zone" if kind == "seat" else "ga", session_id, zone_id)]
    if tier_id is not None:
        keys.append(quota_key("tier", session_id, price_tier_id=tier_id))
    return keys


def check_holder(name: str, doc_type: str, number: str) -> str:
    """The holder's normalised document number, or the first refusal of name or number."""
    if not name.strip():
        raise OrderError("holder_name_missing", field="holder.name")
    if len(name) > MAX_HOLDER_NAME or not name.isprintable():
        raise OrderError("holder_name_bad", field="holder.name")
    return normal_document(doc_type, number)


def plan_order(conn: sa.Connection, req: OrderRequest, now: datetime) -> Plan:
    """Check and price an order; raises the first refusal, naming its field."""
    if not 1 <= len(req.lines) <= MAX_LINES or any(
            line.kind not in ("seat", "ga", "pass") for line in req.lines):
        raise OrderError("bad_order_lines", limit=MAX_LINES, field="lines")
    if req.buyer is not None and not (1 <= len(req.buyer) <= MAX_BUYER
                                      and req.buyer.isprintable()):
        raise OrderError("bad_buyer", field="buyer")
    s, tiers, named = _session(conn, req, now) if req.session_id is not None else (None, [], {})
    if s is None and any(line.kind != "pass" for line in req.lines):
        raise OrderError("unknown_session", session_id=None, field="session_id")
    event = EventLimits(s.event_id, s.event_buyer_limit, s.event_holder_limit) \
        if s is not None else None
    pricing = _Pricing.load(conn, s, tiers, req, now) if s is not None else None
    ring = keyring_for(conn) if any(line.holder for line in req.lines) else None
    lines, seats_asked = [], set()
    for i, line in enumerate(req.lines):
        try:
            if line.seat_id is not None and (line.kind != "seat" or line.seat_id in seats_asked):
                raise (OrderError("seat_twice", seat_id=line.seat_id, field="seat_id")
                       if line.kind == "seat" else
                       OrderError("seat_on_other_line", field="seat_id"))
            seats_asked.add(line.seat_id)
            lines.extend(_plan_line(conn, s, pricing, ring, line, now, req.quota_scopes))
        except HubError as e:  # the refusal names the line: lines.<i>.<its field>
            e.params["field"] = f"lines.{i}." + str(e.params.get("field") or "holder.doc_number")
            raise
    if len({line.currency for line in lines}) != 1:
        raise OrderError("mixed_currency", field="lines")
    keys = {k for line in lines for k in line.quota_keys} | _ga_fallbacks(lines)
    found = {k: named[k] for k in keys if named.get(k) is not None} | quota_ids(
        conn, keys - named.keys())
    for i, line in enumerate(lines):
        try:
            line.quota_keys = _resolve_quotas(line, found)
        except HubError as e:  # a day without stock: lines.<i>.day
            if e.params.get("field") == "day":
                e.params["field"] = f"lines.{i}.day"
            raise
    return Plan(s, event, lines, sum(line.amount for line in lines), lines[0].currency, found)


def _plan_line(conn: sa.Connection, s, pricing, ring, line: LineRequest, now: datetime,
               scopes: tuple[str, ...]) -> list[PlannedLine]:
    """The planned lines of one asked for: one, or a bundle's parts."""
    if line.kind == "pass":
        planned = _product_lines(conn, line, now)
    else:
        planned = [pricing.line(line)]
        if line.amount is not None:
            planned[0].amount = line.amount
        if s.real_name and line.holder is None:
            raise OrderError("holder_required", session_id=s.id, field="holder")
    for p in planned:
        p.quota_keys += [scoped_key(scope, p.session_id, p.price_tier_id, p.product_id, p.day)
                         for scope in scopes]
        if line.holder is not None:
            number = check_holder(*line.holder)
            p.holder = (line.holder[0], line.holder[1], number)
            p.holder_hash = ring.doc_hash(number)
            if s is not None and s.real_name and line.kind != "pass":
                p.doc_hash = p.holder_hash
    return planned


def _ga_fallbacks(lines: list[PlannedLine]) -> set[str]:
    return {quota_key("ga", line.session_id, 0) for line in lines if line.kind == "ga"}


def _resolve_quotas(line: PlannedLine, found: dict[str, int]) -> list[str]:
    """The quotas a line counts against: those of its zone and tier that exist; general
    admission and passes must have theirs (a zone's GA quota, else the session's)."""
    keys = [k for k in line.quota_keys if k in found]
    if line.kind == "ga":
        ga = [k for k in line.quota_keys if k.startswith("ga:") and k in found] or [
            k for k in (quota_key("ga", line.session_id, 0),) if k in found]
        if not ga:
            raise OrderError("no_general_admission", session_id=line.session_id,
                             field="zone_id")
        keys = [k for k in keys if not k.startswith("ga:")] + ga[:1]
    if line.kind == "pass" and not any(k.startswith(("pass:", "day:")) for k in keys):
        if line.day is not None:
            raise OrderError("day_not_on_sale", product_id=line.product_id,
                             day=line.day.isoformat(), field="day")
        raise OrderError("product_not_on_sale", product_id=line.product_id, field="product_id")
    return sorted(set(keys))


_PRODUCT = sa.select(products).where(products.c.id == sa.bindparam("product_id"))


def _product(conn: sa.Connection, product_id: int | None, now: datetime):
    p = conn.execute(_PRODUCT, {"product_id": product_id}).first() \
        if isinstance(product_id, int) else None
    if p is None:
        raise OrderError("unknown_product", product_id=product_id, field="product_id")
    if not _open(p.sale_opens_at, p.sale_closes_at, now):
        raise OrderError("product_not_on_sale", product_id=p.id, field="product_id")
    return p


def _product_line(p, day: date | None, amount: int, now: datetime) -> PlannedLine:
    """A pass's line, or a day product's on its day: not a day gone by (China time), within
    the product's validity; its stock is the day's quota, which must exist."""
    key = quota_key("pass", product_id=p.id)
    if p.kind == "day":
        if not isinstance(day, date) or isinstance(day, datetime):
            raise OrderError("day_required", product_id=p.id, field="day")
        first = max(filter(None, (now, p.valid_from))).astimezone(CHINA).date()
        if day < first or (p.valid_until is not None
                           and day >= p.valid_until.astimezone(CHINA).date()):
            raise OrderError("day_not_on_sale", product_id=p.id, day=day.isoformat(),
                             field="day")
        key = quota_key("day", product_id=p.id, day=day)
    else:
        day = None
    return PlannedLine("pass", None, None, p.zone_id, None, p.id, amount, p.currency, None,
                       None, None, [key], day=day)


def _product_lines(conn: sa.Connection, line: LineRequest, now: datetime) -> list[PlannedLine]:
    """A product's line, or a bundle's: one line per part and unit, the bundle's price shared
    among them in proportion to the parts' own prices (largest remainder: they add up)."""
    p = _product(conn, line.product_id, now)
    amount = p.amount if line.amount is None else line.amount
    if p.kind != "bundle":
        return [_product_line(p, line.day, amount, now)]
    parts = []
    for r in conn.execute(sa.select(product_parts.c.part_id, product_parts.c.qty).where(
            product_parts.c.bundle_id == p.id).order_by(product_parts.c.part_id)):
        part = _product(conn, r.part_id, now)
        parts += [part] * r.qty
    if not parts:
        raise OrderError("product_not_on_sale", product_id=p.id, field="product_id")
    weights = [part.amount for part in parts]
    weights = weights if sum(weights) else [1] * len(parts)
    total = sum(weights)
    shares = [amount * w // total for w in weights]
    for i in sorted(range(len(parts)), key=lambda i: (-(amount * weights[i] % total), i))[
            :amount - sum(shares)]:
        shares[i] += 1
    return [_product_line(part, line.day, share, now) for part, share in zip(
        parts, shares, strict=True)]


@dataclass
class _Pricing:
    """A session's tiers, by id and by the seat category they price, and its zones."""

    session: object
    tiers: dict[int, Tier]
    by_category: dict[str, Tier]
    zones: set[int]
    seats: dict[int, object]
    now: datetime

    @classmethod
    def load(cls, conn: sa.Connection, s, tier_list: list[Tier], req: OrderRequest,
             now: datetime) -> _Pricing:
        tiers = {t.id: t for t in tier_list}
        by_category = {t.seat_category: t for t in tiers.values() if t.seat_category}
        zone_ids = {int(z) for z in s.zone_ids.split(",")} if s.zone_ids else set()
        wanted = {line.seat_id for line in req.lines if line.seat_id is not None}
        seat_rows = {r.id: r for r in conn.execute(
            _SEATS, {"session_id": s.id, "wanted": sorted(wanted)})} if wanted else {}
        return cls(s, tiers, by_category, zone_ids, seat_rows, now)

    def _tier(self, tier_id: int | None):
        if tier_id is None:
            if self.tiers:
                raise OrderError("tier_required", field="price_tier_id")
            return None
        tier = self.tiers.get(tier_id)
        if tier is None:
            raise OrderError("tier_not_for_session", tier_id=tier_id, field="price_tier_id")
        if not _open(tier.sale_opens_at, tier.sale_closes_at, self.now):
            raise OrderError("tier_not_on_sale", tier_id=tier_id, field="price_tier_id")
        return tier

    def line(self, line: LineRequest) -> PlannedLine:
        s, category, zone_id = self.session, None, line.zone_id
        if line.kind == "seat" and line.seat_id is not None:
            seat = self.seats.get(line.seat_id)
            if seat is None:
                raise OrderError("unknown_seat", seat_id=line.seat_id, field="seats")
            zone_id, priced = seat.zone_id, self.by_category.get(seat.category)
            if priced is not None and line.price_tier_id not in (None, priced.id):
                raise OrderError("tier_not_for_seat", seat_id=line.seat_id,
                                 price_tier_id=priced.id, category=seat.category,
                                 tier_id=line.price_tier_id, field="price_tier_id")
            tier = self._tier(priced.id if priced is not None else line.price_tier_id)
            if priced is None and tier is not None and tier.seat_category:
                raise OrderError("tier_not_for_seat", seat_id=line.seat_id,
                                 price_tier_id=None, category=seat.category,
                                 tier_id=tier.id, field="price_tier_id")
        else:
            if zone_id and zone_id not in self.zones:
                raise OrderError("unknown_zone", zone_id=zone_id, field="zone_id")
            tier = self._tier(line.price_tier_id)
            if line.kind == "seat":
                if not zone_id:
                    raise OrderError("unknown_zone", zone_id=zone_id, field="zone_id")
                category = tier.seat_category if tier is not None else None
            elif tier is not None and tier.seat_category:
                raise OrderError("tier_prices_seats", tier_id=tier.id,
                                 category=tier.seat_category, field="price_tier_id")
        keys = _line_quota_keys(line.kind, s.id, zone_id, tier.id if tier is not None else None)
        planned = PlannedLine(
            line.kind, s.id, line.seat_id, zone_id, tier.id if tier is not None else None,
            None, tier.amount if tier is not None else 0,
            tier.currency if tier is not None else "CNY", None, None, None, keys, category,
            frozenset(self.by_category))
        return planned
