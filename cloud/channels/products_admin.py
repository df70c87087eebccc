"""Products sold through distribution: day products with a daily stock, and bundles.

- A day product (a scenic spot's day ticket, a hotel's room night) admits at one venue on the
  day it is sold for. Its stock is one inventory quota per day (kind ``day``, key
  ``day:<product id>:<YYYY-MM-DD>``, cloud/inventory/quotas.py), counted by the same
  conditional update as every quota, so a day is never oversold under races; a day with no
  quota is not for sale.
- A bundle is sold whole; its parts (passes or day products) are what its tickets are. Its
  scope is the venues its parts admit at.

Products are the catalog's (cloud/catalog/products.py ``add_product``), quotas the
inventory's: this module only checks what distribution asks and calls them.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa

from cloud.catalog.products import add_product
from cloud.catalog.tables import product_parts, products, sessions, venues
from cloud.channels.partner_terms import TermsError
from cloud.inventory.quotas import add_quota, quota_ids, quota_key, set_capacity
from cloud.inventory.seats import InventoryError
from cloud.inventory.tables import quotas
from sync.timeutil import CHINA

MAX_DAYS = 366  # the longest run of days one change of stock covers
MAX_STOCK = 1_000_000


def _bad(field: str) -> TermsError:
    return TermsError("bad_terms_request", field=field)


def _whole(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(field)
    return value


def add_day_product(conn: sa.Connection, code: str, name: str, amount: int, *, venue_id: int,
                    currency: str = "CNY", sale_opens_at: datetime | None = None,
                    sale_closes_at: datetime | None = None, actor: str) -> int:
    """A day product of a venue; its id. It is for sale on the days given a stock."""
    venue_id = _whole(venue_id, "venue_id", 1, 2**31 - 1)
    if not conn.execute(sa.select(venues.c.id).where(venues.c.id == venue_id)).first():
        raise _bad("venue_id")
    return add_product(conn, code, name, amount, kind="day", scope_kind="venues",
                       scope=[venue_id], currency=currency, sale_opens_at=sale_opens_at,
                       sale_closes_at=sale_closes_at, actor=actor)


def _venues_of(conn: sa.Connection, part_ids: list[int]) -> list[int]:
    """The venues the parts admit at: a venues product's own, a sessions product's sessions'."""
    found: set[int] = set()
    session_ids: set[int] = set()
    for kind, scope in conn.execute(sa.select(products.c.scope_kind, products.c.scope)
                                    .where(products.c.id.in_(part_ids))).all():
        (found if kind == "venues" else session_ids).update(scope)
    if session_ids:
        found.update(conn.execute(sa.select(sessions.c.venue_id)
                                  .where(sessions.c.id.in_(sorted(session_ids)))).scalars())
    return sorted(found)


def add_bundle(conn: sa.Connection, code: str, name: str, amount: int, parts: dict[int, int],
               *, currency: str = "CNY", sale_opens_at: datetime | None = None,
               sale_closes_at: datetime | None = None, actor: str) -> int:
    """A bundle of ``parts`` (product id: how many), sold at ``amount``; its id. The catalog
    refuses parts that are missing, bundles themselves or more than 20 of one."""
    if not isinstance(parts, dict) or not parts or not all(
            isinstance(k, int) and not isinstance(k, bool) for k in parts):
        raise _bad("parts")
    scope = _venues_of(conn, sorted(parts))
    if not scope:
        raise _bad("parts")
    return add_product(conn, code, name, amount, kind="bundle", parts=parts,
                       scope_kind="venues", scope=scope, currency=currency,
                       sale_opens_at=sale_opens_at, sale_closes_at=sale_closes_at,
                       actor=actor)


def list_products(conn: sa.Connection, kinds: tuple[str, ...] = ("day", "bundle")
                  ) -> list[sa.Row]:
    return list(conn.execute(sa.select(products).where(products.c.kind.in_(kinds))
                             .order_by(products.c.kind, products.c.code)))


def product(conn: sa.Connection, product_id: int):
    """The product with its parts (``{part id: qty}``, a bundle's), or None."""
    row = conn.execute(sa.select(products).where(products.c.id == product_id)).first()
    if row is None:
        return None
    parts = dict(conn.execute(sa.select(product_parts.c.part_id, product_parts.c.qty)
                              .where(product_parts.c.bundle_id == product_id)).all())
    return {**row._mapping, "parts": parts}


def _day_product(conn: sa.Connection, product_id: object) -> int:
    product_id = _whole(product_id, "product_id", 1, 2**31 - 1)
    kind = conn.execute(sa.select(products.c.kind)
                        .where(products.c.id == product_id)).scalar()
    if kind != "day":
        raise _bad("product_id")
    return product_id


def set_daily_stock(conn: sa.Connection, product_id: int, first_day: date, last_day: date,
                    capacity: int, actor: str, now: datetime) -> int:
    """Each day from ``first_day`` to ``last_day`` (not before today in China, at most
    :data:`MAX_DAYS`) has ``capacity`` of the day product: its quota is made, or changed —
    never below what that day has sold (``stock_below_sold``, naming the day). How many days
    were set."""
    product_id = _day_product(conn, product_id)
    if not isinstance(first_day, date) or isinstance(first_day, datetime) \
            or first_day < now.astimezone(CHINA).date():
        raise _bad("first_day")
    if not isinstance(last_day, date) or isinstance(last_day, datetime) \
            or not first_day <= last_day < first_day + timedelta(days=MAX_DAYS):
        raise _bad("last_day")
    capacity = _whole(capacity, "capacity", 0, MAX_STOCK)
    days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    keys = {quota_key("day", product_id=product_id, day=d): d for d in days}
    have = quota_ids(conn, set(keys))
    for key, day in keys.items():
        if key not in have:
            add_quota(conn, "day", capacity, product_id=product_id, day=day, actor=actor)
            continue
        try:
            set_capacity(conn, have[key], capacity, actor=actor)
        except InventoryError as e:
            if e.code != "capacity_below_used":
                raise
            raise TermsError("stock_below_sold", day=day.isoformat(),
                             used=e.params["used"]) from None
    return len(days)


def stock_for(conn: sa.Connection, product_id: int, first_day: date, days: int) -> list[dict]:
    """The day product's stock on ``days`` days from ``first_day``: each day's capacity and
    what is sold or held of it (a day with no stock: capacity 0, not for sale)."""
    days = _whole(days, "days", 1, MAX_DAYS)
    last = first_day + timedelta(days=days - 1)
    found = {r.day: r for r in conn.execute(
        sa.select(quotas.c.day, quotas.c.capacity, quotas.c.used)
        .where(quotas.c.kind == "day", quotas.c.product_id == product_id,
               quotas.c.day >= first_day, quotas.c.day <= last))}
    out = []
    for n in range(days):
        day = first_day + timedelta(days=n)
        row = found.get(day)
        out.append({"day": day, "capacity": row.capacity if row else 0,
                    "used": row.used if row else 0})
    return out
