"""A buyer's paid order is delivered to the buyer: the worker's handler of the job the
payment's capture writes (``cloud/sales/orders.py`` ``DELIVER_TICKETS_JOB``). It writes
one message per ticket to the buyer's mobile and, if they gave one, e-mail, each with a link to
its ticket's QR code (``cloud/messaging/delivery.py`` ``deliver_order``), in the buyer's
language. Run again (a worker that died after its work), it writes nothing twice: the
messages are de-duplicated by ticket and address."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.buyers.accounts import profile
from cloud.messaging.delivery import deliver_order
from cloud.sales.tables import orders


def deliver_paid_order(conn: sa.Connection, payload: dict[str, Any], now: datetime) -> None:
    buyer = conn.execute(sa.select(orders.c.buyer).where(
        orders.c.id == payload["order_id"])).scalar()
    if not buyer or not buyer.startswith("buyer:"):
        return
    me = profile(conn, int(buyer.removeprefix("buyer:")))
    if me.state != "active":
        return  # a disabled account is told nothing; customer service has the order
    deliver_order(conn, payload["order_id"], sms_to=me.mobile, email_to=me.email,
                  language=me.language, now=now)
