"""The ticket library against the ledger, and what sales cost.

:func:`ticket_library`: for the orders paid in a period, per session and channel, what their
tickets say — sold, refunded, voided, used at the gates, and the amount they keep (every
ticket not refunded: a voided ticket's money was not given back) — against what the ledger
says the same orders brought in (their payments' clearing postings less their refunds'), and
the difference. A difference is money the tickets do not account for: a refund marked on a
ticket whose money has not gone back yet, a payment kept that issued nothing, a second payment
of the same order waiting to be returned.

:func:`costs`: per event and channel, the entries posted in a period: what buyers paid, what
was refunded, and each part of the split (net of refunds) — the provider's fees, the
platform's, the distributors' and agents' commissions, the organisers' and venues' parts.

Both read with a handful of grouped queries, never row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import events, sessions
from cloud.ledger.tables import ledger_entries, ledger_postings
from cloud.sales.tables import TOPUP, orders, tickets

# what the appliances reported admitted, one row per ticket and session (cloud/ops/tables.py,
# kept by the entries' import): named here, not imported, since the ledger reads no ops code
entered_tickets = sa.table("entered_tickets", sa.column("session_id"),
                           sa.column("ticket_id"))
MONEY_KINDS = ("payment", "unplaced", "refund")  # the entries of money in and out of an order


@dataclass(frozen=True)
class LibraryRow:
    session_id: int | None
    session_name: str
    channel: str
    orders: int
    sold: int
    refunded: int
    voided: int
    used: int
    ticket_amount: int   # the tickets' amounts, refunded ones excepted
    ledger_amount: int   # what the ledger holds for the same orders
    difference: int      # ledger_amount - ticket_amount


@dataclass(frozen=True)
class CostRow:
    event_id: int | None
    event_name: str
    channel: str
    gross: int           # what buyers paid
    refunds: int         # what went back to them
    provider_fees: int
    platform_fees: int
    distributor: int
    agent: int
    organiser: int
    venue: int


def channel_expr(order=orders):
    """cloud/ledger/posting.py ``channel_of`` as SQL over ``orders``: ``presale`` (a lottery
    application's order), ``topup`` (a partner's online top-up), the channel's name for it (``sold_via``), ``web`` (a buyer's
    account) or ``box_office``."""
    return sa.case((order.c.kind.in_(("presale", TOPUP)), order.c.kind),
                   (order.c.sold_via.is_not(None), order.c.sold_via),
                   (order.c.buyer.like("buyer:%"), "web"), else_="box_office")


def _paid_in(since: datetime, until: datetime):
    return sa.and_(orders.c.paid_at >= since, orders.c.paid_at < until)


def _tickets_side(conn: sa.Connection, since: datetime, until: datetime) -> dict:
    channel = channel_expr().label("channel")
    t = tickets
    used = sa.exists().where(entered_tickets.c.ticket_id == t.c.id)

    def count(condition):
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    rows = conn.execute(
        sa.select(orders.c.session_id, channel,
                  sa.func.count(sa.distinct(orders.c.id)).label("orders"),
                  sa.func.count(t.c.id).label("sold"),
                  count(t.c.state == "refunded").label("refunded"),
                  count(t.c.state == "void").label("voided"),
                  count(used).label("used"),
                  sa.func.coalesce(sa.func.sum(sa.case((t.c.state != "refunded", t.c.amount),
                                                       else_=0)), 0).label("amount"))
        .select_from(orders.outerjoin(t, t.c.order_id == orders.c.id))
        .where(_paid_in(since, until), orders.c.kind != TOPUP)  # a top-up sells nothing
        .group_by(orders.c.session_id, channel)).all()
    return {(r.session_id, r.channel): r for r in rows}


def _ledger_side(conn: sa.Connection, since: datetime, until: datetime) -> dict:
    channel = channel_expr().label("channel")
    e, p = ledger_entries, ledger_postings
    rows = conn.execute(
        sa.select(orders.c.session_id, channel, sa.func.sum(p.c.amount).label("amount"))
        .select_from(p.join(e, e.c.id == p.c.entry_id).join(orders, orders.c.id == e.c.order_id))
        .where(_paid_in(since, until), p.c.part == "clearing", e.c.state == "posted",
               e.c.kind.in_(MONEY_KINDS), orders.c.kind != TOPUP)
        .group_by(orders.c.session_id, channel)).all()
    return {(r.session_id, r.channel): int(r.amount or 0) for r in rows}


def _names(conn: sa.Connection, table: sa.Table, ids) -> dict:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(conn.execute(sa.select(table.c.id, table.c.name)
                             .where(table.c.id.in_(ids))).all())


def ticket_library(conn: sa.Connection, since: datetime, until: datetime) -> list[LibraryRow]:
    """Per session and channel, the orders paid from ``since`` until ``until``: their tickets
    against the ledger's amounts for the same orders."""
    mine, ledger = _tickets_side(conn, since, until), _ledger_side(conn, since, until)
    names = _names(conn, sessions, (key[0] for key in mine.keys() | ledger.keys()))
    out = []
    for key in sorted(mine.keys() | ledger.keys(), key=lambda k: (k[0] or 0, k[1])):
        r, held = mine.get(key), ledger.get(key, 0)
        amount = int(r.amount) if r else 0
        out.append(LibraryRow(
            key[0], names.get(key[0], ""), key[1], r.orders if r else 0,
            int(r.sold) if r else 0, int(r.refunded) if r else 0, int(r.voided) if r else 0,
            int(r.used) if r else 0, amount, held, held - amount))
    return out


def costs(conn: sa.Connection, since: datetime, until: datetime) -> list[CostRow]:
    """Per event and channel, the payments and refunds posted from ``since`` until ``until``:
    gross, refunds, and each part of the split net of refunds (positive: what the part got)."""
    e, p = ledger_entries, ledger_postings
    owed = ledger_postings.alias("owed")  # a refund of money no order kept is not a sale's
    rows = conn.execute(
        sa.select(e.c.event_id, e.c.channel, e.c.kind, p.c.part,
                  sa.func.sum(p.c.amount).label("amount"))
        .select_from(p.join(e, e.c.id == p.c.entry_id))
        .where(e.c.state == "posted", e.c.kind.in_(("payment", "refund")),
               e.c.posted_at >= since, e.c.posted_at < until,
               sa.or_(e.c.channel.is_(None), e.c.channel != TOPUP),  # money in, not a sale
               ~sa.exists().where(owed.c.entry_id == e.c.id,
                                  owed.c.part == "refunds_payable"))
        .group_by(e.c.event_id, e.c.channel, e.c.kind, p.c.part)).all()
    totals: dict[tuple, dict[str, int]] = {}
    for r in rows:
        group = totals.setdefault((r.event_id, r.channel or ""), {})
        amount = int(r.amount)
        if r.part == "clearing":
            name = "gross" if r.kind == "payment" else "refunds"
            group[name] = group.get(name, 0) + abs(amount)
        else:  # a part is credited by a payment, debited back by a refund
            group[r.part] = group.get(r.part, 0) - amount
    names = _names(conn, events, (key[0] for key in totals))
    return [CostRow(key[0], names.get(key[0], ""), key[1], g.get("gross", 0),
                    g.get("refunds", 0), g.get("provider_fee", 0), g.get("platform", 0),
                    g.get("distributor", 0), g.get("agent", 0), g.get("organiser", 0),
                    g.get("venue", 0))
            for key, g in sorted(totals.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1]))]
