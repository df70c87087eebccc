"""Tickets: finding one by its number or by its holder's document number, its page (state,
seat, price, masked holder, the code as a QR code), void and refund. (The box office, which
sells through the order path and its payments, is in cloud/payments/booth_pages.py.)

Document numbers only ever arrive in a POST body and leave masked: never in a URL, a log or
on a screen in full.
"""

from __future__ import annotations

import re
import unicodedata

import sqlalchemy as sa
from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from cloud.catalog.tables import price_tiers, seats, sessions, venues, zones
from cloud.core.errors import HubError
from cloud.core.seal import keyring_for
from cloud.sales.history import MAX_HISTORY, entry_history
from cloud.sales.holders import document_match, open_holder
from cloud.sales.holders import holder as holder_of
from cloud.sales.tables import holders, tickets
from cloud.sales.tickets import (
    MAX_REFUND_REASON,
    MIN_REFUND_REASON,
    admissions,
    paid_order_of,
    refundable_alone,
    reveal_ticket,
    revoke_ticket,
)
from cloud.web.web import actor, back, can, engine, ok, page_blueprint, permission, qr_svg, refused
from cloud.web.words import rule_error
from sync import numbers
from sync.identity import DOC_TYPES, DocumentError, mask_document, normalize_document

bp = page_blueprint("tickets")
MAX_RESULTS = 100
_NUMBER = re.compile(r"T?(\d{1,12})")


def normal_ticket_number(text: str) -> str | None:
    """A ticket number as typed: ``7kq2-m9xa-pc4`` → ``7KQ2M9XAPC4`` (the format of
    ``sync/numbers.py``, its check character right); a number of the older format as
    ``T000000042``, ``t42`` or ``42`` → ``T000000042``."""
    typed = numbers.normalize(text)
    if numbers.is_number(typed):
        return typed
    m = _NUMBER.fullmatch(text.strip().upper())
    return f"T{int(m.group(1)):09d}" if m else None


@bp.get("/tickets")
@permission("tickets.search")
def search():
    raw = request.args.get("number", "").strip()
    if raw:
        number = normal_ticket_number(raw)
        if number:
            with engine().connect() as conn:
                found = conn.execute(sa.select(tickets.c.id).where(tickets.c.number == number)
                                     ).first()
            if found:
                return redirect(url_for("tickets.detail", number=number), 303)
        refused(_("No ticket with the number %(number)s.", number=raw[:40]))
    return render_template("sales/search.html", number=raw[:40], results=None, errors={})


def _generic_document(text: str) -> str:
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", text)).upper()


@bp.post("/tickets/holder")
@permission("tickets.search")
def holder_search():
    """Find tickets by the holder's document number, sent in the form body (never a URL)."""
    doc_type = request.form.get("doc_type", "")
    raw = request.form.get("doc_number", "")
    errors = {}
    number = None
    if doc_type and doc_type not in DOC_TYPES:
        errors["doc_type"] = _("Choose a document type.")
    elif not raw.strip():
        errors["doc_number"] = _("Type the document number.")
    elif doc_type:
        try:
            number = normalize_document(doc_type, raw)
        except DocumentError as e:
            errors["doc_number"] = rule_error(e)
    else:
        number = _generic_document(raw)
    results = None
    if number:
        q = (sa.select(tickets.c.number, tickets.c.state, tickets.c.kind, holders.c.id,
                       holders.c.sealed_name, holders.c.doc_type, holders.c.sealed_doc_number,
                       sessions.c.name.label("session_name"), sessions.c.starts_at,
                       venues.c.timezone)
             .join(holders, holders.c.id == tickets.c.holder_id)
             .outerjoin(sessions, sessions.c.id == tickets.c.session_id)
             .outerjoin(venues, venues.c.id == sessions.c.venue_id)
             .order_by(tickets.c.id.desc()).limit(MAX_RESULTS))
        if doc_type:
            q = q.where(holders.c.doc_type == doc_type)
        with engine().connect() as conn:
            ring = keyring_for(conn)
            q = q.where(document_match(conn, number))
            # opened only to be masked on the page
            results = [{**r._mapping, **vars(open_holder(ring, r))}
                       for r in conn.execute(q)]
        searched = mask_document(number)
    else:
        searched = None
    status = 422 if errors else 200
    return render_template("sales/search.html", number="", results=results, errors=errors,
                           searched=searched, doc_type=doc_type, limit=MAX_RESULTS), status


def ticket_or_404(conn: sa.Connection, number: str):
    t = conn.execute(
        sa.select(tickets, sessions.c.name.label("session_name"), sessions.c.starts_at,
                  sessions.c.ends_at, sessions.c.venue_id.label("session_venue"),
                  seats.c.level, seats.c.row.label("seat_row"), seats.c.number.label("seat_no"),
                  price_tiers.c.name.label("tier_name"), price_tiers.c.code.label("tier_code"))
        .outerjoin(sessions, sessions.c.id == tickets.c.session_id)
        .outerjoin(seats, seats.c.id == tickets.c.seat_id)
        .outerjoin(price_tiers, price_tiers.c.id == tickets.c.price_tier_id)
        .where(tickets.c.number == number)).first()
    if t is None:
        abort(404)
    return t


def _ticket_page(number: str, template: str = "sales/detail.html", **extra):
    with engine().connect() as conn:
        t = ticket_or_404(conn, number)
        venue_ids = [t.session_venue] if t.session_venue else list(t.venues)
        venue_rows = conn.execute(sa.select(venues).where(venues.c.id.in_(venue_ids))
                                  .order_by(venues.c.id)).all()
        zone = conn.execute(sa.select(zones).where(zones.c.id == t.zone_id)).first() \
            if t.zone_id else None
        holder = holder_of(conn, t.holder_id)  # opened only to be masked on the page
        scope_sessions = conn.execute(sa.select(sessions.c.id, sessions.c.name).where(
            sessions.c.id.in_(list(t.scope)))).all() if t.kind == "sessions" else []
        history = entry_history(conn, t.id)
        admitted = admissions(conn, t.id)
        paid_order = paid_order_of(conn, t.id)
    tz = venue_rows[0].timezone if venue_rows else None
    # The code is a bearer credential: its QR code is shown once, on the receipt of the sale to
    # the clerk who made it (cloud/payments/order_pages.py), and never here but by a reveal.
    return render_template(template, t=t, venues=venue_rows, zone=zone, holder=holder, tz=tz,
                           scope_sessions=scope_sessions,
                           history=history, admissions=admitted, history_limit=MAX_HISTORY,
                           reason_words=entry_reason_words, paid_order=paid_order,
                           supervisor=can(SUPERVISOR), **extra)


# Who may do what a clerk may not do alone (refund a ticket that has admitted someone).
SUPERVISOR = "orders.approve_refund"
# The appliances' reasons (edge/reasons.py: a closed set), as the hub's pages say them.
ENTRY_REASONS = {
    "OK": lazy_gettext("admitted"), "ALREADY_ENTERED": lazy_gettext("already used"),
    "UNKNOWN": lazy_gettext("not recognised"), "FORGED": lazy_gettext("forged code"),
    "REVOKED": lazy_gettext("revoked"), "NOT_YET_VALID": lazy_gettext("not valid yet"),
    "EXPIRED": lazy_gettext("expired"), "WRONG_SESSION": lazy_gettext("wrong session"),
    "WRONG_GATE": lazy_gettext("wrong gate"),
    "REALNAME_REQUIRED": lazy_gettext("ID card required"),
    "REALNAME_MISMATCH": lazy_gettext("ID card does not match"),
    "BLOCKED": lazy_gettext("blocked"), "DEVICE_ERROR": lazy_gettext("device error"),
}


def entry_reason_words(reason: str) -> str:
    words = ENTRY_REASONS.get(reason)
    return str(words) if words is not None else reason


@bp.get("/tickets/<number>")
@permission("tickets.search")
def detail(number: str):
    return _ticket_page(number)


@bp.post("/tickets/<number>/reveal")
@permission("tickets.reveal")
def reveal(number: str):
    """Customer service: the holder in full and the code, once, for a reason that the audit
    log keeps with who and when."""
    try:
        with engine().begin() as conn:
            shown = reveal_ticket(conn, number, actor(), request.form.get("reason", ""))
    except HubError as e:
        if e.code == "unknown_ticket":
            abort(404)
        refused(rule_error(e))
        return back("tickets.detail", number=number)
    return _ticket_page(number, revealed=shown, revealed_qr=qr_svg(shown.code, scale=3))


REVOKE = {"void": "void", "refund": "refunded"}


@bp.get("/tickets/<number>/<any(void, refund):action>")
@permission("tickets.refund")
def confirm_revoke(number: str, action: str):
    return _ticket_page(number, "sales/revoke.html", action=action)


def _revoke_refusal(e: HubError) -> str:
    if e.code == "admitted_needs_supervisor":
        return _("This ticket has admitted someone at a gate: only a supervisor (whose role "
                 "may approve refunds) may refund it, with a reason.")
    if e.code == "reason_required":
        return _("Say why this ticket is refunded although it has admitted someone "
                 "(%(low)d to %(high)d characters).", low=MIN_REFUND_REASON,
                 high=MAX_REFUND_REASON)
    return rule_error(e)


@bp.post("/tickets/<number>/<any(void, refund):action>")
@permission("tickets.refund")
def revoke(number: str, action: str):
    try:
        with engine().begin() as conn:
            t = ticket_or_404(conn, number)
            if action == "refund":
                refundable_alone(conn, t.id, t.number)
            revoke_ticket(conn, t.id, REVOKE[action], actor=actor(),
                          supervisor=can(SUPERVISOR),
                          reason=request.form.get("reason", "")[:1000])
    except HubError as e:
        refused(_revoke_refusal(e))
        if e.code == "reason_required":
            return back("tickets.confirm_revoke", number=number, action=action)
    else:
        ok(_("Ticket %(number)s is void: its code no longer opens any gate.", number=number)
           if action == "void" else
           _("Ticket %(number)s is refunded: its code no longer opens any gate.",
             number=number))
    return back("tickets.detail", number=number)
