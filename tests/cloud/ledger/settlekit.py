"""What the settlement tests share: two partners on their own cycles, the rules splitting each
payment among them, the platform and the provider, and sales and refunds posted the way the
payments area posts them (cloud/ledger/posting.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from cloud.ledger.partners import add_rule, create_partner
from cloud.ledger.posting import Paid, post_payment, post_refund
from cloud.sales.tables import orders

DAY0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
PROVIDER = "wechat"


def day(n: float) -> datetime:
    return DAY0 + timedelta(days=n)


def set_up(conn: sa.Connection) -> dict[str, int]:
    """ORG (organiser, T+7) takes what is left; VEN (venue, T+3) 10 % of each payment; the
    platform 5 %, the provider 0.6 %."""
    org = create_partner(conn, "ORG", "Spring Concerts", "organiser", 7, "fin", DAY0)
    ven = create_partner(conn, "VEN", "City Arena", "venue", 3, "fin", DAY0)
    for part, partner_id, bp in (("organiser", org, 0), ("venue", ven, 1000),
                                 ("platform", None, 500), ("provider_fee", None, 60)):
        add_rule(conn, part=part, partner_id=partner_id, basis_points=bp, fixed_per_ticket=0,
                 effective_from=DAY0, actor="fin", now=DAY0)
    return {"ORG": org, "VEN": ven}


def sell(conn: sa.Connection, n: int, amount: int, at: datetime) -> Paid:
    """Order ``n`` paid ``amount`` at ``at``: its payment posted (payment id = order id)."""
    conn.execute(sa.insert(orders).values(
        id=n, number=f"W{n:05d}", actor="buyer:1", buyer="buyer:1", state="paid", total=amount,
        expires_at=at, created_at=at, paid_at=at))
    paid = Paid(n, n, PROVIDER, f"T{n:05d}", amount)
    post_payment(conn, paid, at)
    return paid


def refund(conn: sa.Connection, paid: Paid, refund_id: int, amount: int, at: datetime) -> None:
    post_refund(conn, paid, refund_id, f"R{refund_id:05d}", amount, at)
