"""Tickets: finding one by its number or by its holder's document number, its page (state,
seat, price, masked holder, the code as a QR code), void and refund; and the box office.

Document numbers only ever arrive in a POST body and leave masked: never in a URL, a log or
on a screen in full.
"""

from __future__ import annotations

import re
import unicodedata

import sqlalchemy as sa
from flask import abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from cloud.catalog.tables import price_tiers, seats, sessions, venues, zones
from cloud.core.errors import HubError
from cloud.core.seal import keyring_for
from cloud.fleet.tables import appliances, entries
from cloud.inventory.pages import session_or_404, session_rows
from cloud.sales.holders import document_match, open_holder
from cloud.sales.holders import holder as holder_of
from cloud.sales.selling import sale_problems
from cloud.sales.selling import sell as sell_tickets
from cloud.sales.tables import holders, tickets
from cloud.sales.tickets import (
    MAX_REFUND_REASON,
    MIN_REFUND_REASON,
    TicketSpec,
    admissions,
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
    tz = venue_rows[0].timezone if venue_rows else None
    # The code is a bearer credential: its QR code is shown once, to the box office clerk who
    # has just sold the ticket, and never in a list, on a later visit or to ops.
    sold_now = session.pop(JUST_SOLD, None) == t.number and can("tickets.sell")
    return render_template(template, t=t, venues=venue_rows, zone=zone, holder=holder, tz=tz,
                           scope_sessions=scope_sessions,
                           qr=qr_svg(t.code, scale=3) if sold_now else None,
                           history=history, admissions=admitted, history_limit=MAX_HISTORY,
                           reason_words=entry_reason_words,
                           supervisor=can(SUPERVISOR), **extra)


MAX_HISTORY = 200
# Who may do what a clerk may not do alone (refund a ticket that has admitted someone).
SUPERVISOR = "orders.approve_refund"
JUST_SOLD = "just_sold"
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


def entry_history(conn: sa.Connection, ticket_id: int) -> list:
    """The ticket's entries as the appliances pushed them, newest first: time, appliance,
    lane, direction, admitted or refused and the reason."""
    return conn.execute(
        sa.select(entries.c.at, entries.c.lane, entries.c.direction, entries.c.admitted,
                  entries.c.reason, appliances.c.name.label("appliance"),
                  venues.c.name.label("venue"), venues.c.timezone)
        .join(appliances, appliances.c.id == entries.c.appliance_id)
        .outerjoin(venues, venues.c.id == entries.c.venue_id)
        .where(entries.c.ticket_id == ticket_id)
        .order_by(entries.c.at.desc(), entries.c.seq.desc()).limit(MAX_HISTORY)).all()


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


# -- the box office -------------------------------------------------------------------------


@bp.get("/box-office")
@permission("tickets.sell")
def box_office():
    with engine().connect() as conn:
        rows = session_rows(conn, on_sale_only=True)
    return render_template("sales/box_office.html", sessions=rows)


def _sale_form(session_id: int, form: dict, errors: dict, status: int = 200):
    with engine().connect() as conn:
        s = session_or_404(conn, session_id)
        tiers = conn.execute(sa.select(price_tiers).where(price_tiers.c.session_id == session_id)
                             .order_by(price_tiers.c.amount.desc())).all()
        zone_rows = conn.execute(sa.select(zones).where(zones.c.venue_id == s.venue_id)
                                 .order_by(zones.c.code)).all()
    return render_template("sales/sell.html", s=s, tiers=tiers, zones=zone_rows, form=form,
                           errors=errors), status


@bp.get("/box-office/<int:session_id>")
@permission("tickets.sell")
def sell_form(session_id: int):
    return _sale_form(session_id, {"seating": "seat"}, {})


# Which field of the sale form a refusal of the sale's rules belongs beside, and the words
# the form says it in; a refusal not listed here is shown above the form.
SALE_FIELDS = {
    "not_on_sale": ("session", lazy_gettext("This session is not on sale.")),
    "unknown_zone": ("zone_id", lazy_gettext("Choose one of this venue's zones.")),
    "tier_required": ("price_tier_id", lazy_gettext("Choose a price.")),
    "tier_not_for_session": ("price_tier_id", lazy_gettext("Choose a price.")),
    "holder_name_missing": ("holder_name", lazy_gettext("The holder's name as on the document.")),
    "holder_name_bad": ("holder_name", lazy_gettext("A name of up to 200 printable characters.")),
    "document_unknown_type": ("doc_type", lazy_gettext("Choose the document type.")),
}


def _seating(conn: sa.Connection, s, f: dict, errors: dict) -> tuple[int | None, int]:
    """The seat (by level, row and number at the session's venue) or the zone the form asks
    for; what cannot be found is marked in ``errors``."""
    seat_id, zone_id = None, 0
    if f["seating"] == "seat":
        for key in ("level", "row", "number"):
            if not f[key]:
                errors[key] = _("Required for a seated ticket.")
        if not errors:
            seat_id = conn.execute(sa.select(seats.c.id).where(
                seats.c.venue_id == s.venue_id, seats.c.level == f["level"],
                seats.c.row == f["row"], seats.c.number == f["number"])).scalar()
            if seat_id is None:
                errors["number"] = _("There is no such seat at this venue.")
    elif f["seating"] == "general":
        if f["zone_id"]:
            zone_id = int(f["zone_id"]) if f["zone_id"].isdigit() else -1
    else:
        errors["seating"] = _("Choose a seat or general admission.")
    return seat_id, zone_id


def _holder(f: dict, errors: dict) -> tuple[str, str, str] | None:
    if not (f["holder_name"] or f["doc_number"]):
        return None
    if f["doc_type"] and not f["doc_number"]:
        errors["doc_number"] = _("The document number.")
    return f["holder_name"], f["doc_type"], f["doc_number"]


@bp.post("/box-office/<int:session_id>")
@permission("tickets.sell")
def sell(session_id: int):
    f = {k: request.form.get(k, "").strip() for k in (
        "seating", "level", "row", "number", "zone_id", "price_tier_id", "customer",
        "holder_name", "doc_type", "doc_number")}
    # holder data is never sent back into the page: on a refusal the clerk types it again
    keep = {k: v for k, v in f.items() if k not in ("holder_name", "doc_number")}
    errors: dict[str, str] = {}
    with engine().connect() as conn:
        s = session_or_404(conn, session_id)
        seat_id, zone_id = _seating(conn, s, f, errors)
        spec = TicketSpec(session_id=session_id, seat_id=seat_id, zone_id=zone_id,
                          price_tier_id=int(f["price_tier_id"]) if f["price_tier_id"].isdigit()
                          else None, holder=_holder(f, errors), customer=f["customer"] or None)
        for problem in sale_problems(conn, session_id, spec):
            # a document number's refusals sit beside it, in the words of their codes
            field, words = SALE_FIELDS.get(problem.code, (
                "doc_number" if problem.code.startswith("document_") else "session", None))
            errors.setdefault(field, str(words) if words else rule_error(problem))
    if errors:
        refused(_("No ticket was issued: see the marked fields."))
        return _sale_form(session_id, keep, errors, 422)
    try:
        with engine().begin() as conn:
            issued = sell_tickets(conn, session_id, [spec], actor=actor())[0]
    except HubError as e:
        refused(_("No ticket was issued: %(why)s", why=rule_error(e)))
        return _sale_form(session_id, keep, {}, 409)
    ok(_("Ticket %(number)s issued.", number=issued.number))
    session[JUST_SOLD] = issued.number  # its code is shown on the next page, once
    return back("tickets.detail", number=issued.number)
