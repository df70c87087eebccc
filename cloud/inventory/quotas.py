"""Quotas: capacities the database enforces, per zone, per price tier, for general admission,
for passes, for a day product's day (its daily stock), for a sales channel (per session × tier
or product × day) and for the contract customers together (per session × tier).

A sale adds to ``used`` in its own transaction with one conditional statement per quota
(``UPDATE … SET used = used + n WHERE id = … AND used + n <= capacity``), quotas in id order
and after everything else, so a quota's row is locked for as short a time as possible and two
sales never wait on each other in a circle; ``CHECK (used <= capacity)`` and
``CHECK (used >= 0)`` stand behind it. Releases (an expired, cancelled or refunded order) are
applied in the same pass, merged with what the sale adds.
"""

from __future__ import annotations

import json
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cloud.core.audit import SYSTEM, record
from cloud.core.db import per_dialect
from cloud.inventory.seats import InventoryError
from cloud.inventory.tables import QUOTA_KINDS, quotas

# what each kind of quota names besides its capacity
NEEDS = {"zone": ("session_id", "zone_id"), "tier": ("session_id", "price_tier_id"),
         "ga": ("session_id",), "pass": ("product_id",), "day": ("product_id", "day"),
         "channel": ("channel_id",), "contract": ("session_id",)}


def scoped_key(scope: str, session_id: int | None = None, price_tier_id: int | None = None,
               product_id: int | None = None, day: date | None = None) -> str:
    """The key of a quota a sales channel adds to what a line counts against: ``scope`` is
    ``chan:<channel id>`` or ``contract``; the thing counted a session × tier (tier 0: the
    session's untiered sales) or a product × day (``-``: a product sold without a day)."""
    if session_id is not None:
        return f"{scope}:s{session_id}:t{price_tier_id or 0}"
    return f"{scope}:p{product_id}:{day.isoformat() if day else '-'}"


def quota_key(kind: str, session_id: int | None = None, zone_id: int | None = None,
              price_tier_id: int | None = None, product_id: int | None = None,
              day: date | None = None, channel_id: int | None = None) -> str:
    """The one name of what a quota counts: a general-admission quota with no zone counts
    the session's general admission as a whole (zone 0)."""
    if kind == "zone":
        return f"zone:{session_id}:{zone_id}"
    if kind == "tier":
        return f"tier:{session_id}:{price_tier_id}"
    if kind == "ga":
        return f"ga:{session_id}:{zone_id or 0}"
    if kind == "day":
        return f"day:{product_id}:{day.isoformat()}"
    if kind == "channel":
        return scoped_key(f"chan:{channel_id}", session_id, price_tier_id, product_id, day)
    if kind == "contract":
        return scoped_key("contract", session_id, price_tier_id)
    return f"pass:{product_id}"


def add_quota(conn: sa.Connection, kind: str, capacity: int, *, session_id: int | None = None,
              zone_id: int | None = None, price_tier_id: int | None = None,
              product_id: int | None = None, day: date | None = None,
              channel_id: int | None = None, actor: str = SYSTEM) -> int:
    """A capacity for a zone, a price tier, general admission (a zone's or, without a zone,
    the session's), a pass product, a day product's day, a channel's sales of a session × tier
    or product × day, or the contract customers' sales of a session × tier."""
    given = {"session_id": session_id, "zone_id": zone_id, "price_tier_id": price_tier_id,
             "product_id": product_id, "day": day, "channel_id": channel_id}
    if kind not in QUOTA_KINDS or isinstance(capacity, bool) or not isinstance(capacity, int) \
            or capacity < 0 or any(given[k] is None for k in NEEDS[kind]) \
            or (kind == "channel" and session_id is None and product_id is None):
        raise InventoryError("bad_quota", kind=kind, needs=", ".join(NEEDS.get(kind, ("?",))))
    key = quota_key(kind, **given)
    if conn.execute(sa.select(quotas.c.id).where(quotas.c.key == key)).first():
        raise InventoryError("quota_exists", key=key)
    quota_id = conn.execute(sa.insert(quotas).values(
        key=key, kind=kind, capacity=capacity, used=0, **given)).inserted_primary_key[0]
    record(conn, actor, "quota.create", f"quota:{quota_id}", None,
           {"key": key, "capacity": capacity})
    return quota_id


def set_capacity(conn: sa.Connection, quota_id: int, capacity: int,
                 actor: str = SYSTEM) -> None:
    """Change a quota's capacity; never below what is used (checked in the statement)."""
    before = conn.execute(sa.select(quotas.c.capacity, quotas.c.used)
                          .where(quotas.c.id == quota_id)).first()
    if before is None:
        raise InventoryError("unknown_quota", quota_id=quota_id)
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
        raise InventoryError("bad_quota", kind="this", needs="a capacity")
    done = conn.execute(sa.update(quotas).where(quotas.c.id == quota_id,
                                                quotas.c.used <= capacity)
                        .values(capacity=capacity)).rowcount
    if not done:
        used = conn.execute(sa.select(quotas.c.used).where(quotas.c.id == quota_id)).scalar()
        raise InventoryError("capacity_below_used", quota_id=quota_id, used=used)
    record(conn, actor, "quota.capacity", f"quota:{quota_id}", {"capacity": before.capacity},
           {"capacity": capacity})


def quota_by_key(conn: sa.Connection, key: str):
    """The quota with this key (its id, capacity and used), or None."""
    return conn.execute(sa.select(quotas.c.id, quotas.c.capacity, quotas.c.used)
                        .where(quotas.c.key == key)).first()


def ids_of_listed_keys(dialect, listed: sa.BindParameter) -> sa.Select:
    """The key and id of each quota whose key the parameter ``listed`` names (a JSON list of
    keys): one statement for any number of keys, each found by the key's index (an expanding
    IN is rendered again on every call). Also read inside an order's session statement
    (``cloud/sales/order_plan.py``)."""
    keys = sa.select(sa.func.json_array_elements_text(sa.cast(listed, sa.JSON))) \
        if dialect is postgresql else \
        sa.select(sa.column("value")).select_from(sa.func.json_each(listed))
    return sa.select(quotas.c.key, quotas.c.id).where(quotas.c.key.in_(keys))


_IDS = per_dialect(lambda d: ids_of_listed_keys(d, sa.bindparam("keys", type_=sa.String)))


_N = sa.bindparam("n", type_=sa.Integer)
_GROW = sa.update(quotas).where(quotas.c.id == sa.bindparam("quota_id"),
                                quotas.c.used + _N <= quotas.c.capacity
                                ).values(used=quotas.c.used + _N)
_SHRINK = sa.update(quotas).where(quotas.c.id == sa.bindparam("quota_id")).values(
    used=quotas.c.used + _N)


def quota_ids(conn: sa.Connection, keys: set[str]) -> dict[str, int]:
    """The ids of the quotas with these keys (keys with no quota are left out)."""
    if not keys:
        return {}
    return dict(conn.execute(_IDS(conn), {"keys": json.dumps(sorted(keys))}).all())


def apply_quotas(conn: sa.Connection, deltas: dict[int, int]) -> int | None:
    """Add each delta to its quota, in id order, each in one conditional statement; returns
    the first quota that has no room for its increase (the caller rolls back), else None."""
    for quota_id in sorted(deltas):
        n = deltas[quota_id]
        if n > 0:
            done = conn.execute(_GROW, {"quota_id": quota_id, "n": n}).rowcount
            if not done:
                return quota_id
        elif n < 0:
            conn.execute(_SHRINK, {"quota_id": quota_id, "n": n})
    return None


def describe(conn: sa.Connection, quota_id: int) -> str:
    """How a refusal names a quota: its key (``zone:1:2``, ``ga:1:0``, ``pass:3``)."""
    return conn.execute(sa.select(quotas.c.key).where(quotas.c.id == quota_id)).scalar() or "?"
