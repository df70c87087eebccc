"""What live order lines count against, written together: per-person purchase counts and
quotas, each in key order, increases within their bound by one conditional statement, and
releases merged into the same statements (see :mod:`cloud.sales.holding`). A refunded ticket
of an order gives its line's share back here too."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.inventory.quotas import apply_quotas
from cloud.sales.tables import order_lines, orders, purchase_counts

Key = tuple[str, str]


@dataclass
class Deltas:
    """Changes to quotas (by id) and purchase counts (by scope and party) to write together."""

    quotas: Counter = field(default_factory=Counter)
    counts: Counter = field(default_factory=Counter)

    def add_line(self, holds: dict, sign: int) -> None:
        for quota_id in holds["quotas"]:
            self.quotas[quota_id] += sign
        for scope, party in holds["counts"]:
            self.counts[(scope, party)] += sign

    def merge(self, other: Deltas) -> Deltas:
        return Deltas(_sum(self.quotas, other.quotas), _sum(self.counts, other.counts))


def _sum(a: Counter, b: Counter) -> Counter:
    out = Counter(a)
    for k, v in b.items():
        out[k] += v
    return out


@dataclass(frozen=True)
class Short:
    """What had no room: a quota (by id) or a purchase count (scope, party)."""

    quota_id: int | None = None
    count: Key | None = None


def _ensure_counts(conn: sa.Connection, keys: list[Key]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(purchase_counts).on_conflict_do_nothing(),
                 [{"scope": s, "party": p, "used": 0} for s, p in keys])


def apply_counts(conn: sa.Connection, deltas: Counter, limits: dict[Key, int]) -> Key | None:
    """Add each delta to its purchase count, in key order, an increase only within its limit
    (one conditional statement each); the first count without room, else None."""
    grow = sorted(k for k, n in deltas.items() if n > 0)
    if grow:
        _ensure_counts(conn, grow)
    for key in sorted(deltas):
        n = deltas[key]
        where = [purchase_counts.c.scope == key[0], purchase_counts.c.party == key[1]]
        if n > 0:
            if not conn.execute(sa.update(purchase_counts).where(
                    *where, purchase_counts.c.used + n <= limits[key])
                    .values(used=purchase_counts.c.used + n)).rowcount:
                return key
        elif n < 0:
            conn.execute(sa.update(purchase_counts).where(*where)
                         .values(used=purchase_counts.c.used + n))
    return None


def write_deltas(conn: sa.Connection, deltas: Deltas, limits: dict[Key, int]) -> Short | None:
    """Counts, then quotas (each in key order, last in the transaction)."""
    key = apply_counts(conn, deltas.counts, limits)
    if key is not None:
        return Short(count=key)
    quota_id = apply_quotas(conn, dict(deltas.quotas))
    return Short(quota_id=quota_id) if quota_id is not None else None


def line_given_back(conn: sa.Connection, ticket_id: int, refunded: bool) -> None:
    """A ticket sold through an order was refunded or voided: its line stops counting (quotas,
    purchase counts, its document's place), as its seat went back on sale. A refund makes the
    order partially refunded, or refunded when no line is left; a void (no money moves) leaves
    the order's state. A ticket sold outside an order has no line and changes nothing here."""
    line = conn.execute(sa.update(order_lines).where(
        order_lines.c.ticket_id == ticket_id, order_lines.c.state == "issued")
        .values(state="refunded" if refunded else "released")
        .returning(order_lines.c.order_id, order_lines.c.holds)).first()
    if line is None:
        return
    back = Deltas()
    back.add_line(line.holds, -1)
    write_deltas(conn, back, {})
    if not refunded:
        return
    live = conn.execute(sa.select(sa.func.count()).select_from(order_lines).where(
        order_lines.c.order_id == line.order_id, order_lines.c.state == "issued")).scalar_one()
    conn.execute(sa.update(orders).where(orders.c.id == line.order_id).values(
        state="partially_refunded" if live else "refunded"))
