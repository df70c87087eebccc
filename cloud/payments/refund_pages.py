"""The refund pages: a session's refund policy, the request of a refund for tickets of an
order (``/orders/<number>/refund``: choose, see the amount, confirm), the approvers' list of
pending requests (``/refunds``) and a request's page (``/refunds/<id>``) with approve and
reject, each asking for confirmation. The rules are cloud/sales/refunds.py and, for the
money, cloud/payments/refund_approval.py; these views only translate.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, render_template, request
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.inventory.pages import session_or_404
from cloud.payments.refund_approval import approve_refund, retry_refund
from cloud.payments.tables import payment_refunds
from cloud.sales.refunds import (
    MAX_NOTE,
    MAX_REASON,
    MIN_NOTE,
    order_by_number,
    policy,
    quote,
    refund_request,
    refundable_tickets,
    reject_request,
    request_lines,
    request_refund,
    request_rows,
    set_policy,
    ticket_ids,
)
from cloud.sales.tables import REFUND_REQUEST_STATES, orders
from cloud.web.query import query_choice
from cloud.web.web import (
    actor,
    back,
    can,
    engine,
    form_local,
    ok,
    page_blueprint,
    parse_local,
    permission,
    refused,
)
from cloud.web.words import rule_error

bp = page_blueprint("refunds")
SUPERVISOR = "orders.approve_refund"


# -- the policy -------------------------------------------------------------------------------


@bp.get("/sessions/<int:session_id>/refund-policy")
@permission("sessions.manage")
def policy_page(session_id: int):
    with engine().connect() as conn:
        s = session_or_404(conn, session_id)
        p, now = policy(conn, session_id, effective=False), policy(conn, session_id)
    return render_template("payments/refund_policy.html", s=s, p=p, now=now,
                           until=form_local(p.refundable_until, s.timezone) if p.explicit
                           else "")


@bp.post("/sessions/<int:session_id>/refund-policy")
@permission("sessions.manage")
def save_policy(session_id: int):
    try:
        with engine().begin() as conn:
            s = session_or_404(conn, session_id)
            text = request.form.get("until", "").strip()
            until = parse_local(text, s.timezone) if text else None
            kind = request.form.get("fee_kind", "none")
            value = request.form.get("fee_value", "0").strip() or "0"
            set_policy(conn, session_id, until, kind, int(value) if value.isdigit() else -1,
                       actor())
    except ValueError as e:
        refused(rule_error(e) if isinstance(e, HubError) else _("Give a date and time."))
    else:
        ok(_("The refund policy is saved."))
    return back("refunds.policy_page", session_id=session_id)


# -- asking for a refund ----------------------------------------------------------------------


def _order_or_404(conn: sa.Connection, number: str):
    o = order_by_number(conn, number)
    if o is None:
        abort(404)
    return o


@bp.get("/orders/<number>/refund")
@permission("orders.request_refund")
def ask(number: str):
    with engine().connect() as conn:
        o = _order_or_404(conn, number)
        live = refundable_tickets(conn, o.id)
        p = policy(conn, o.session_id) if o.session_id else None
    return render_template("payments/refund_ask.html", o=o, live=live, p=p, q=None,
                           max_reason=MAX_REASON)


@bp.post("/orders/<number>/refund")
@permission("orders.request_refund")
def ask_post(number: str):
    chosen = request.form.getlist("ticket")
    reason = request.form.get("reason", "")[:1000]
    try:
        if request.form.get("confirm") != "1":  # first the amount, then the confirmation
            with engine().connect() as conn:
                o = _order_or_404(conn, number)
                q = quote(conn, o.id, ticket_ids(conn, o, chosen) if chosen else [])
            return render_template("payments/refund_ask.html", o=o, live=[], p=q.policy, q=q,
                                   reason=reason, max_reason=MAX_REASON)
        with engine().begin() as conn:
            o = _order_or_404(conn, number)
            rid = request_refund(conn, o.id, ticket_ids(conn, o, chosen) if chosen else [],
                                 actor(), reason)
    except HubError as e:
        refused(rule_error(e))
        return back("refunds.ask", number=number)
    ok(_("The refund is asked for: another person with the right to approve refunds decides "
         "it."))
    return back("refunds.detail", request_id=rid)


# -- deciding ---------------------------------------------------------------------------------


@bp.get("/refunds")
@permission(SUPERVISOR)
def pending():
    state = query_choice("state", REFUND_REQUEST_STATES, "pending")
    with engine().connect() as conn:
        rows = request_rows(conn, state=state)
    return render_template("payments/refunds.html", rows=rows, me=actor(), state=state)


def _details(conn: sa.Connection, request_id: int) -> dict:
    try:
        r = refund_request(conn, request_id)
    except HubError:
        abort(404)
    provider_refund = None
    if r.payment_refund_id is not None:
        provider_refund = conn.execute(sa.select(payment_refunds).where(
            payment_refunds.c.id == r.payment_refund_id)).first()
    o = conn.execute(sa.select(orders.c.number).where(orders.c.id == r.order_id)).scalar()
    return {"r": r, "lines": request_lines(conn, request_id), "provider_refund": provider_refund,
            "order_number": o}


@bp.get("/refunds/<int:request_id>")
@permission("tickets.search")
def detail(request_id: int):
    with engine().connect() as conn:
        found = _details(conn, request_id)
    return render_template("payments/refund.html", **found, me=actor(), decide=None,
                           may_decide=can(SUPERVISOR), low=MIN_NOTE, high=MAX_NOTE)


@bp.get("/refunds/<int:request_id>/<any(approve, reject):decision>")
@permission(SUPERVISOR)
def confirm(request_id: int, decision: str):
    with engine().connect() as conn:
        found = _details(conn, request_id)
    return render_template("payments/refund.html", **found, me=actor(), decide=decision,
                           may_decide=True, low=MIN_NOTE, high=MAX_NOTE)


@bp.post("/refunds/<int:request_id>/<any(approve, reject):decision>")
@permission(SUPERVISOR)
def decide(request_id: int, decision: str):
    note = request.form.get("note", "")[:1000]
    try:
        with engine().begin() as conn:
            if decision == "approve":
                state = approve_refund(conn, request_id, actor(), supervisor=can(SUPERVISOR),
                                       note=note)
            else:
                reject_request(conn, request_id, actor(), note)
    except HubError as e:
        refused(rule_error(e))
        return back("refunds.confirm", request_id=request_id, decision=decision)
    if decision == "reject":
        ok(_("The refund request is rejected: its tickets stay valid."))
    elif state == "succeeded":
        ok(_("The refund is approved and the money is back: the tickets no longer open any "
             "gate and their seats are on sale again."))
    else:
        ok(_("The refund is approved: the tickets no longer open any gate; the money goes "
             "back through the payment provider, and their seats return to sale when it "
             "has."))
    return back("refunds.detail", request_id=request_id)


@bp.post("/refunds/<int:request_id>/retry")
@permission(SUPERVISOR)
def retry(request_id: int):
    try:
        with engine().begin() as conn:
            retry_refund(conn, request_id, actor())
    except HubError as e:
        refused(rule_error(e))
    else:
        ok(_("The refund is sent again."))
    return back("refunds.detail", request_id=request_id)
