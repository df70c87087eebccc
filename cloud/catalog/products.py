"""Products sold beside a session's seats: passes, day products and bundles, each with a price.

A pass is a product rather than a price tier because it belongs to no one session: it admits
to a list of sessions (scope kind ``sessions``) or to venues within a validity window
(``venues``), and it is sold like anything else — a ``pass`` line of an order, at the
product's price, counted against the product's ``pass`` quota (``cloud/inventory/quotas.py``),
which the sale requires: a pass without a capacity is not for sale.

A day product (a scenic spot's day ticket, a hotel's room night) admits at its venue on the
day it is sold for, from that day's stock (a ``day`` quota each day). A bundle is sold whole:
its parts (``product_parts``, passes or day products, never bundles) are what its tickets are.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.errors import CatalogError
from cloud.catalog.events import check_amount, check_window
from cloud.catalog.tables import product_parts, products
from cloud.core.audit import SYSTEM, record


def add_product(conn: sa.Connection, code: str, name: str, amount: int, *,
                scope_kind: str, scope: list[int], event_id: int | None = None,
                currency: str = "CNY", zone_id: int = 0, daily_limit: int = 0,
                valid_from: datetime | None = None, valid_until: datetime | None = None,
                sale_opens_at: datetime | None = None, sale_closes_at: datetime | None = None,
                kind: str = "pass", parts: dict[int, int] | None = None,
                actor: str = SYSTEM) -> int:
    """A pass product (a venues pass needs its validity window), a day product (``venues``,
    one venue) or a bundle of ``parts`` (part product id: how many of it)."""
    check_amount(amount, currency)
    check_window(sale_opens_at, sale_closes_at)
    if kind not in ("pass", "day", "bundle") or scope_kind not in ("sessions", "venues") \
            or not scope \
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in scope) \
            or (kind == "pass" and scope_kind == "venues"
                and (valid_from is None or valid_until is None)) \
            or (kind == "day" and (scope_kind != "venues" or len(set(scope)) != 1)):
        raise CatalogError("bad_product_scope")
    if (kind == "bundle") != (parts is not None) or (parts is not None
                                                     and not _parts_ok(conn, parts)):
        raise CatalogError("bad_bundle_parts")
    if conn.execute(sa.select(products.c.id).where(products.c.code == code)).first():
        raise CatalogError("product_code_taken", code=code)
    product_id = conn.execute(sa.insert(products).values(
        code=code, name=name, kind=kind, amount=amount, currency=currency,
        scope_kind=scope_kind, scope=sorted(set(scope)), event_id=event_id, zone_id=zone_id,
        daily_limit=daily_limit, valid_from=valid_from, valid_until=valid_until,
        sale_opens_at=sale_opens_at, sale_closes_at=sale_closes_at)).inserted_primary_key[0]
    if parts:
        conn.execute(sa.insert(product_parts), [
            {"bundle_id": product_id, "part_id": part, "qty": qty}
            for part, qty in sorted(parts.items())])
    record(conn, actor, "product.create", f"product:{product_id}", None,
           {"code": code, "kind": kind, "amount": amount, "currency": currency,
            "scope_kind": scope_kind, "scope": sorted(set(scope)),
            **({"parts": {str(k): v for k, v in sorted(parts.items())}} if parts else {})})
    return product_id


def _parts_ok(conn: sa.Connection, parts: object) -> bool:
    """A bundle's parts: 1 to 10 products that exist and are not bundles, 1 to 20 of each."""
    if not isinstance(parts, dict) or not 1 <= len(parts) <= 10 or not all(
            isinstance(k, int) and not isinstance(k, bool) and isinstance(v, int)
            and not isinstance(v, bool) and 1 <= v <= 20 for k, v in parts.items()):
        return False
    kinds = dict(conn.execute(sa.select(products.c.id, products.c.kind)
                              .where(products.c.id.in_(sorted(parts)))).all())
    return len(kinds) == len(parts) and "bundle" not in kinds.values()
