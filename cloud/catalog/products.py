"""Products sold beside a session's seats: passes, each with a price and a capacity.

A pass is a product rather than a price tier because it belongs to no one session: it admits
to a list of sessions (scope kind ``sessions``) or to venues within a validity window
(``venues``), and it is sold like anything else — a ``pass`` line of an order, at the
product's price, counted against the product's ``pass`` quota (``cloud/inventory/quotas.py``),
which the sale requires: a pass without a capacity is not for sale.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.errors import CatalogError
from cloud.catalog.events import check_amount, check_window
from cloud.catalog.tables import products
from cloud.core.audit import SYSTEM, record


def add_product(conn: sa.Connection, code: str, name: str, amount: int, *,
                scope_kind: str, scope: list[int], event_id: int | None = None,
                currency: str = "CNY", zone_id: int = 0, daily_limit: int = 0,
                valid_from: datetime | None = None, valid_until: datetime | None = None,
                sale_opens_at: datetime | None = None, sale_closes_at: datetime | None = None,
                actor: str = SYSTEM) -> int:
    """A pass product. A venues pass needs its validity window."""
    check_amount(amount, currency)
    check_window(sale_opens_at, sale_closes_at)
    if scope_kind not in ("sessions", "venues") or not scope \
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in scope) \
            or (scope_kind == "venues" and (valid_from is None or valid_until is None)):
        raise CatalogError("bad_product_scope")
    if conn.execute(sa.select(products.c.id).where(products.c.code == code)).first():
        raise CatalogError("product_code_taken", code=code)
    product_id = conn.execute(sa.insert(products).values(
        code=code, name=name, kind="pass", amount=amount, currency=currency,
        scope_kind=scope_kind, scope=sorted(set(scope)), event_id=event_id, zone_id=zone_id,
        daily_limit=daily_limit, valid_from=valid_from, valid_until=valid_until,
        sale_opens_at=sale_opens_at, sale_closes_at=sale_closes_at)).inserted_primary_key[0]
    record(conn, actor, "product.create", f"product:{product_id}", None,
           {"code": code, "amount": amount, "currency": currency, "scope_kind": scope_kind,
            "scope": sorted(set(scope))})
    return product_id
