"""What is told about a presale: a buyer's applications (their own only), the staff's counts
per lot (applied, drawn, ratio) and the public results (application numbers, nothing
personal)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.catalog.tables import price_tiers, seats, sessions
from cloud.inventory.seat_plan import seat_label
from cloud.lottery.applying import shown_state
from cloud.lottery.errors import LotteryError
from cloud.lottery.tables import presale_applications, presale_lots, presales
from cloud.sales.tables import order_lines, orders, tickets
from sync.timeutil import utcnow

PAID_STATES = ("applied", "refused", "won", "lost", "refunding", "refunded", "seated")


def application_rows(conn: sa.Connection, where: sa.ColumnElement[bool],
                     now: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
    now = now or utcnow()
    a = presale_applications.c
    rows = conn.execute(sa.select(
        a.id, a.number, a.presale_id, a.lot_id, a.quantity, a.amount, a.currency, a.state,
        a.rank, a.reason, a.created_at, a.order_id, presales.c.name.label("presale"),
        presales.c.choose_closes_at, presales.c.state.label("presale_state"),
        sessions.c.id.label("session_id"), sessions.c.name.label("session"),
        sessions.c.starts_at, price_tiers.c.name.label("tier"),
        orders.c.number.label("order_number"), orders.c.state.label("order_state"),
        orders.c.expires_at)
        .join(presales, presales.c.id == a.presale_id)
        .join(presale_lots, presale_lots.c.id == a.lot_id)
        .join(sessions, sessions.c.id == presale_lots.c.session_id)
        .join(price_tiers, price_tiers.c.id == presale_lots.c.price_tier_id)
        .join(orders, orders.c.id == a.order_id)
        .where(where).order_by(a.id.desc()).limit(limit)).all()
    return [{**r._asdict(), "shown": shown_state(r.state, r.order_state, r.expires_at, now)}
            for r in rows]


def seats_of(conn: sa.Connection, order_id: int) -> list[dict[str, Any]]:
    """The seats and tickets an application's order holds once seated."""
    return [{"seat": seat_label(r.level, r.row, r.number), "ticket": r.ticket}
            for r in conn.execute(sa.select(
                seats.c.level, seats.c.row, seats.c.number,
                tickets.c.number.label("ticket")).select_from(order_lines)
                .join(seats, seats.c.id == order_lines.c.seat_id)
                .join(tickets, tickets.c.id == order_lines.c.ticket_id)
                .where(order_lines.c.order_id == order_id, order_lines.c.state == "issued")
                .order_by(order_lines.c.id))]


def applications_of(conn: sa.Connection, buyer: str,
                    now: datetime | None = None) -> list[dict[str, Any]]:
    """A buyer's applications, newest first."""
    return application_rows(conn, presale_applications.c.buyer == buyer, now)


def buyer_application(conn: sa.Connection, buyer: str, number: str,
                      now: datetime | None = None) -> dict[str, Any]:
    """One of the buyer's applications with its seats; another buyer's is not found."""
    found = application_rows(conn, sa.and_(presale_applications.c.buyer == buyer,
                                           presale_applications.c.number == number), now)
    if not found:
        raise LotteryError("unknown_application", number=number, field="number")
    view = found[0]
    view["seats"] = seats_of(conn, view["order_id"]) if view["state"] == "seated" else []
    return view


def lot_counts(conn: sa.Connection, presale_id: int) -> list[dict[str, Any]]:
    """Per lot: its session's state, applications and tickets applied for (paid), tickets
    drawn, the ratio of tickets applied for to tickets in the draw, and how many winners have
    seats."""
    a = presale_applications.c
    paid = a.state.in_(PAID_STATES)
    won = a.state.in_(("won", "seated"))
    rows = conn.execute(sa.select(
        presale_lots.c.id, presale_lots.c.tickets, sessions.c.name.label("session"),
        sessions.c.state.label("session_state"), price_tiers.c.name.label("tier"),
        sa.func.count(a.id).filter(paid).label("applications"),
        sa.func.coalesce(sa.func.sum(a.quantity).filter(paid), 0).label("applied"),
        sa.func.coalesce(sa.func.sum(a.quantity).filter(won), 0).label("drawn"),
        sa.func.count(a.id).filter(a.state == "seated").label("seated"),
        sa.func.count(a.id).filter(a.state.in_(("lost", "refused", "refunding")))
        .label("to_refund"),
        sa.func.count(a.id).filter(a.state == "refunded").label("refunded"))
        .select_from(presale_lots)
        .join(sessions, sessions.c.id == presale_lots.c.session_id)
        .join(price_tiers, price_tiers.c.id == presale_lots.c.price_tier_id)
        .outerjoin(presale_applications, a.lot_id == presale_lots.c.id)
        .where(presale_lots.c.presale_id == presale_id)
        .group_by(presale_lots.c.id, presale_lots.c.tickets, sessions.c.name,
                  sessions.c.state, price_tiers.c.name).order_by(presale_lots.c.id)).all()
    return [{**r._asdict(), "ratio": round(r.applied / r.tickets, 2) if r.tickets else 0}
            for r in rows]


def public_winners(conn: sa.Connection, presale_id: int) -> dict[int, list[str]]:
    """The winning application numbers per lot, in draw order: nothing personal."""
    out: dict[int, list[str]] = {}
    for lot_id, number in conn.execute(sa.select(
            presale_applications.c.lot_id, presale_applications.c.number).where(
            presale_applications.c.presale_id == presale_id,
            presale_applications.c.state.in_(("won", "seated")))
            .order_by(presale_applications.c.lot_id, presale_applications.c.rank)):
        out.setdefault(lot_id, []).append(number)
    return out
