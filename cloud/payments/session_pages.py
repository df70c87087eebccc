"""A session changed after it went on sale: its sale rules edited, postponed to new times, or
cancelled (``/sessions/<id>/change``).

- **Edit** (``sessions.manage``): the name, the sale window, the real-name rule, the limits
  per buyer and per holder and the minutes an order waits for its payment
  (cloud/inventory/sessions.py ``edit_session``; a limit left empty is no limit).
- **Postpone** (``sessions.manage``): new start, end and gate-opening times, sent to the
  venue's appliances in the same transaction (``postpone_session``). The tickets stay valid
  for the new time; a buyer who cannot come is refunded in full, with no fee, until the new
  start (cloud/sales/refunds.py ``policy``), and the session's ticket holders can be told by
  a send task (the page links to it).
- **Cancel** (``orders.approve_refund``: it gives back every paid order's money): a
  confirmation page first, with what will be refunded; then the session is cancelled and the
  worker refunds its paid orders in full, in batches (``sessions.refund_cancelled``,
  cloud/payments/refund_approval.py); the page shows how far that is.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.inventory.pages import session_or_404
from cloud.inventory.sessions import cancel_session, edit_session, postpone_session
from cloud.sales.refunds import orders_to_refund
from cloud.sales.tables import REFUND_REQUEST_STATES, orders, refund_requests, tickets
from cloud.web.web import (
    actor,
    back,
    engine,
    form_local,
    ok,
    page_blueprint,
    parse_local,
    permission,
    refused,
)
from cloud.web.words import rule_error

bp = page_blueprint("session_changes", "/sessions")
MANAGE, SUPERVISOR = "sessions.manage", "orders.approve_refund"
LIMITS = ("buyer_limit", "holder_limit", "payment_minutes")


def _paid(conn: sa.Connection, session_id: int) -> dict:
    """The session's paid orders and their live tickets: what a cancellation gives back."""
    live = sa.and_(tickets.c.order_id == orders.c.id, tickets.c.state == "issued")
    row = conn.execute(
        sa.select(sa.func.count(sa.distinct(orders.c.id)).label("orders"),
                  sa.func.count(tickets.c.id).label("tickets"),
                  sa.func.coalesce(sa.func.sum(tickets.c.amount), 0).label("amount"))
        .select_from(orders.join(tickets, live))
        .where(orders.c.session_id == session_id,
               orders.c.state.in_(("paid", "partially_refunded")))).one()
    return {"orders": row.orders, "tickets": row.tickets, "amount": int(row.amount)}


def _bulk(conn: sa.Connection, session_id: int) -> dict:
    """How far a cancelled session's refunds are: orders still to be asked for, and the
    bulk requests by state."""
    by_state = dict(conn.execute(
        sa.select(refund_requests.c.state, sa.func.count())
        .join(orders, orders.c.id == refund_requests.c.order_id)
        .where(orders.c.session_id == session_id, refund_requests.c.bulk.is_(True))
        .group_by(refund_requests.c.state)).all())
    return {"left": len(orders_to_refund(conn, session_id, 0, 10**9)),
            "requests": {s: by_state.get(s, 0) for s in REFUND_REQUEST_STATES}}


def _page(session_id: int, status: int = 200, form: dict | None = None):
    with engine().connect() as conn:
        s = session_or_404(conn, session_id)
        bulk = _bulk(conn, session_id) if s.state == "cancelled" else None
    tz = s.timezone
    values = {"name": s.name, "sale_opens_at": form_local(s.sale_opens_at, tz),
              "sale_closes_at": form_local(s.sale_closes_at, tz),
              "real_name": s.real_name,
              **{k: "" if getattr(s, k) is None else str(getattr(s, k)) for k in LIMITS},
              "starts_at": form_local(s.starts_at, tz), "ends_at": form_local(s.ends_at, tz),
              "gates_open_at": form_local(s.gates_open_at, tz), **(form or {})}
    return render_template("payments/session_change.html", s=s, f=values, bulk=bulk), status


@bp.get("/<int:session_id>/change")
@permission(MANAGE)
def change(session_id: int):
    return _page(session_id)


class _Bad(ValueError):
    """A field of the form that does not read: its words."""


def _moment(name: str, tz: str, required: bool):
    text = request.form.get(name, "").strip()
    if not text:
        if required:
            raise _Bad(_("%(field)s: required.", field=_field(name)))
        return None
    try:
        return parse_local(text, tz)
    except ValueError:
        raise _Bad(_("%(field)s: not a date and time.", field=_field(name))) from None


def _whole(name: str) -> int | None:
    text = request.form.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 6 or int(text) < 1:
        raise _Bad(_("%(field)s: a whole number from 1, or empty.", field=_field(name)))
    return int(text)


def _field(name: str) -> str:
    return {"name": _("Name"), "sale_opens_at": _("Sale opens"),
            "sale_closes_at": _("Sale closes"), "buyer_limit": _("Tickets per buyer"),
            "holder_limit": _("Tickets per holder"),
            "payment_minutes": _("Minutes to pay"), "starts_at": _("Starts"),
            "ends_at": _("Ends"), "gates_open_at": _("Gates open")}.get(name, name)


@bp.post("/<int:session_id>/edit")
@permission(MANAGE)
def edit(session_id: int):
    form = request.form.to_dict()
    try:
        with engine().begin() as conn:
            s = session_or_404(conn, session_id)
            changes = {"name": request.form.get("name", "").strip(),
                       "sale_opens_at": _moment("sale_opens_at", s.timezone, False),
                       "sale_closes_at": _moment("sale_closes_at", s.timezone, False),
                       "real_name": request.form.get("real_name") == "yes",
                       **{k: _whole(k) for k in LIMITS}}
            if changes["payment_minutes"] is None:
                changes.pop("payment_minutes")  # the hub's default stays
            edit_session(conn, session_id, actor=actor(),
                         **{k: v for k, v in changes.items() if v != getattr(s, k)})
    except (_Bad, HubError) as e:
        refused(rule_error(e) if isinstance(e, HubError) else str(e))
        return _page(session_id, 422, {**form, "real_name": form.get("real_name") == "yes"})
    ok(_("The session's sale rules are saved."))
    return back("session_changes.change", session_id=session_id)


@bp.post("/<int:session_id>/postpone")
@permission(MANAGE)
def postpone(session_id: int):
    form = request.form.to_dict()
    try:
        with engine().begin() as conn:
            s = session_or_404(conn, session_id)
            postpone_session(conn, session_id, _moment("starts_at", s.timezone, True),
                             _moment("ends_at", s.timezone, True),
                             _moment("gates_open_at", s.timezone, False), actor=actor())
    except (_Bad, HubError) as e:
        refused(rule_error(e) if isinstance(e, HubError) else str(e))
        return _page(session_id, 422, form)
    ok(_("The session is postponed: the appliances have its new times, its tickets stay "
         "valid, and its buyers may be refunded in full until it starts."))
    return back("session_changes.change", session_id=session_id)


@bp.get("/<int:session_id>/cancel")
@permission(SUPERVISOR)
def cancel_page(session_id: int):
    with engine().connect() as conn:
        s = session_or_404(conn, session_id)
        paid = _paid(conn, session_id)
    return render_template("payments/session_cancel.html", s=s, paid=paid)


@bp.post("/<int:session_id>/cancel")
@permission(SUPERVISOR)
def cancel(session_id: int):
    try:
        with engine().begin() as conn:
            session_or_404(conn, session_id)
            cancel_session(conn, session_id, actor=actor())
    except HubError as e:
        refused(rule_error(e))
        return back("session_changes.change", session_id=session_id)
    ok(_("The session is cancelled: nothing more is sold for it, and its paid orders are "
         "being refunded in full."))
    return back("session_changes.change", session_id=session_id)
