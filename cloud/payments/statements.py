"""Reconciling a provider's daily statement with the hub's own record: every payment and
refund that succeeded in the window against the statement's rows, each difference one
:class:`Discrepancy` (the ledger's reconciliation reads these; nothing is changed here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.payments.providers import BillRow
from cloud.payments.tables import payment_refunds, payments

KINDS = ("missing_from_statement", "unknown_to_hub", "amount_differs")


@dataclass(frozen=True)
class Discrepancy:
    kind: str                     # one of KINDS
    entry: str                    # "payment" or "refund"
    out_trade_no: str
    out_refund_no: str | None
    hub_amount: int | None
    statement_amount: int | None


def _ours(conn: sa.Connection, provider: str, since: datetime,
          until: datetime) -> dict[tuple, int]:
    paid = conn.execute(sa.select(payments.c.out_trade_no, payments.c.amount).where(
        payments.c.provider == provider, payments.c.succeeded_at >= since,
        payments.c.succeeded_at < until))
    found = {("payment", no, None): amount for no, amount in paid}
    refunded = conn.execute(
        sa.select(payments.c.out_trade_no, payment_refunds.c.out_refund_no,
                  payment_refunds.c.amount)
        .join(payments, payments.c.id == payment_refunds.c.payment_id)
        .where(payments.c.provider == provider, payment_refunds.c.state == "succeeded",
               payment_refunds.c.finished_at >= since, payment_refunds.c.finished_at < until))
    found.update({("refund", no, refund_no): amount for no, refund_no, amount in refunded})
    return found


def reconcile(conn: sa.Connection, provider: str, rows: list[BillRow], since: datetime,
              until: datetime) -> list[Discrepancy]:
    """The differences between ``rows`` (the provider's statement of the window) and the
    payments and refunds that succeeded with ``provider`` from ``since`` until ``until``."""
    ours = _ours(conn, provider, since, until)
    theirs: dict[tuple, int] = {}
    for r in rows:
        key = (r.kind, r.out_trade_no, r.out_refund_no if r.kind == "refund" else None)
        theirs[key] = theirs.get(key, 0) + r.amount
    out = []
    for key in sorted(set(ours) | set(theirs), key=lambda k: (k[1], k[0], k[2] or "")):
        hub, statement = ours.get(key), theirs.get(key)
        if hub == statement:
            continue
        kind = ("missing_from_statement" if statement is None
                else "unknown_to_hub" if hub is None else "amount_differs")
        out.append(Discrepancy(kind, key[0], key[1], key[2], hub, statement))
    return out
