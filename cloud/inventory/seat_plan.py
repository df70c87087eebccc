"""A zone's seats for one session as a plan the box office draws: each seat's place (its row
and its position in the row, the same places best-available uses: ``places.py``) and its
status now.

The status is read with the predicates the holds themselves use (``seats.free``,
``seats.reservation_allows``), so the plan never shows as free a seat a sale would refuse,
and a hold past its deadline shows free at once (lazy expiry).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import seats, zones
from cloud.inventory.places import natural
from cloud.inventory.seats import free, reservation_allows
from cloud.inventory.tables import session_seats
from sync.timeutil import utcnow

STATUSES = ("free", "held", "sold", "reserved", "unavailable")
MAX_PLAN_SEATS = 2000  # a zone larger than this is drawn in part: keyboard entry still works


@dataclass(frozen=True)
class PlanSeat:
    seat_id: int
    level: str
    row: str
    number: str
    category: str  # the venue map's category (what prices the seat)
    status: str  # one of STATUSES
    x: int  # position in its row, from 1
    y: int  # the row's place in the zone, from 1

    @property
    def label(self) -> str:
        return seat_label(self.level, self.row, self.number)


@dataclass(frozen=True)
class ZonePlan:
    zone_id: int
    seats: tuple[PlanSeat, ...]
    rows: tuple[str, ...]  # "level/row" of each drawn row, top to bottom
    width: int  # the longest row's positions
    truncated: bool

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(STATUSES, 0)
        for s in self.seats:
            found[s.status] += 1
        return found


def seat_label(level: str, row: str, number: str) -> str:
    """How a clerk reads and types a seat: level, row and number joined by hyphens."""
    return f"{level}-{row}-{number}"


def _status(r, now: datetime) -> str:
    if r.status == "sold":
        return "sold"
    if r.category != "sellable":
        return "unavailable"
    if not r.is_free:
        return "held"
    if not r.open_to_all:
        return "reserved"
    return "free"


def zone_plan(conn: sa.Connection, session_id: int, zone_id: int,
              now: datetime | None = None) -> ZonePlan:
    """The seats of ``zone_id`` for ``session_id`` with their status now: ``free``,
    ``held`` (by an order still in time), ``sold``, ``reserved`` (for a named customer, still
    in time) or ``unavailable`` (not sellable for this session)."""
    now = now or utcnow()
    q = (sa.select(seats.c.id, seats.c.level, seats.c.row, seats.c.number,
                   seats.c.category.label("price_category"), session_seats.c.status,
                   session_seats.c.category, session_seats.c.row_key,
                   session_seats.c.position,
                   free(now).label("is_free"),
                   reservation_allows(None, now).label("open_to_all"))
         .join(session_seats, sa.and_(session_seats.c.seat_id == seats.c.id,
                                      session_seats.c.session_id == session_id))
         .where(session_seats.c.zone_id == zone_id)
         .limit(MAX_PLAN_SEATS + 1))
    rows = conn.execute(q).all()
    truncated = len(rows) > MAX_PLAN_SEATS
    rows = rows[:MAX_PLAN_SEATS]
    row_keys = sorted({r.row_key or f"{r.level}/{r.row}" for r in rows},
                      key=lambda k: tuple(natural(p) for p in k.split("/", 1)))
    y_of = {k: i for i, k in enumerate(row_keys, start=1)}
    by_row: dict[str, list] = {}
    for r in rows:
        by_row.setdefault(r.row_key or f"{r.level}/{r.row}", []).append(r)
    plan = []
    for key, members in by_row.items():
        members.sort(key=lambda r: (r.position, natural(r.number)))
        for i, r in enumerate(members, start=1):
            plan.append(PlanSeat(r.id, r.level, r.row, r.number, r.price_category,
                                 _status(r, now), r.position or i, y_of[key]))
    plan.sort(key=lambda s: (s.y, s.x))
    width = max((s.x for s in plan), default=0)
    return ZonePlan(zone_id, tuple(plan), tuple(row_keys), width, truncated)


def session_zones(conn: sa.Connection, session_id: int) -> list:
    """The zones that have seats for this session (code and name), in code order."""
    return conn.execute(
        sa.select(zones.c.id, zones.c.code, zones.c.name).where(zones.c.id.in_(
            sa.select(session_seats.c.zone_id).where(session_seats.c.session_id == session_id)
            .distinct())).order_by(zones.c.code)).all()


def find_seats(conn: sa.Connection, venue_id: int,
               labels: list[str]) -> tuple[dict[str, int], list[str]]:
    """Seat ids by the labels a clerk typed (``level-row-number``, any case, spaces allowed
    around the hyphens), and the labels no seat of the venue has."""
    wanted: dict[tuple[str, str, str], str] = {}
    for label in labels:
        for triple in _splits(label):
            wanted.setdefault(triple, label)
    found: dict[str, int] = {}
    if wanted:
        level, row, number = (sa.func.upper(seats.c.level), sa.func.upper(seats.c.row),
                              sa.func.upper(seats.c.number))
        q = sa.select(seats.c.id, level.label("l"), row.label("r"), number.label("n")).where(
            seats.c.venue_id == venue_id, seats.c.removed.is_(False),
            sa.or_(*(sa.and_(level == a, row == b, number == c) for a, b, c in wanted)))
        for r in conn.execute(q):
            found.setdefault(wanted[(r.l, r.r, r.n)], r.id)
    return found, [t for t in labels if t not in found]


def _splits(label: str) -> list[tuple[str, str, str]]:
    """Every way to read a typed label as level, row and number (a label of the venue may
    itself hold a hyphen)."""
    parts = [p.strip() for p in label.upper().split("-")]
    found = []
    for i in range(1, len(parts) - 1):
        for j in range(i + 1, len(parts)):
            triple = ("-".join(parts[:i]), "-".join(parts[i:j]), "-".join(parts[j:]))
            if all(triple):
                found.append(triple)
    return found[:20]
