"""A paid order to deliver, on the order tests' hub (tests/cloud/orderkit.py)."""

from __future__ import annotations

from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import capture, create_order
from sync.sample import resident_id
from tests.cloud.orderkit import NOW

DOC = resident_id("11010119900307123")


def paid_order(h, seats=(("A", "2", 1), ("A", "2", 2)), holder=("张小三", "resident_id", DOC)):
    """An order of these seats (the first one with a holder), paid; its id."""
    lines = tuple(LineRequest(seat_id=h.seat(*s), holder=holder if i == 0 else None)
                  for i, s in enumerate(seats))
    with h.engine.begin() as conn:
        made = create_order(conn, OrderRequest(h.session, lines, buyer="u1"), NOW)
        capture(conn, made.order_id, made.total, "offline", "cash-1", NOW)
    return made.order_id
