"""Sessions: the list, creating one, its price tiers and its seat configuration (categories,
confirmation, going on sale, seats reserved for a named customer). Sales and admins."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask import Response, abort, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.tables import events, price_tiers, seats, sessions, venues, zones
from cloud.catalog.venue_pages import all_venues, venue_or_404, venue_page
from cloud.core.errors import HubError
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import export_seats_csv, import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.inventory.tables import session_seats
from cloud.web.query import query_text
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
from sync.timeutil import utcnow

bp = page_blueprint("sessions", "/sessions")
# the venue map's CSV, on the venue's page
seat_map_bp = page_blueprint("seat_map", "/venues")
SEAT_PAGE = 1000


def session_or_404(conn: sa.Connection, session_id: int):
    s = conn.execute(
        sa.select(sessions, venues.c.name.label("venue_name"), venues.c.code.label("venue_code"),
                  venues.c.timezone, events.c.name.label("event_name"))
        .join(venues, venues.c.id == sessions.c.venue_id)
        .join(events, events.c.id == sessions.c.event_id)
        .where(sessions.c.id == session_id)).first()
    if s is None:
        abort(404)
    return s


def session_rows(conn: sa.Connection, on_sale_only: bool = False) -> list:
    q = (sa.select(sessions, venues.c.name.label("venue_name"), venues.c.timezone,
                   events.c.name.label("event_name"))
         .join(venues, venues.c.id == sessions.c.venue_id)
         .join(events, events.c.id == sessions.c.event_id)
         .order_by(sessions.c.starts_at, sessions.c.id))
    if on_sale_only:
        q = q.where(sessions.c.on_sale.is_(True))
    return conn.execute(q).all()


def _index(form: dict, status: int = 200):
    with engine().connect() as conn:
        rows = session_rows(conn)
        event_rows = conn.execute(sa.select(events).order_by(events.c.code)).all()
        venue_rows = all_venues(conn)
    return render_template("inventory/index.html", sessions=rows, events=event_rows,
                           venues=venue_rows, form=form), status


@bp.get("")
@permission("sessions.manage")
def index():
    return _index({})


@bp.post("")
@permission("sessions.manage")
def create():
    f = {k: request.form.get(k, "").strip() for k in (
        "event_id", "event_code", "event_name", "event_discipline", "venue_id", "name",
        "starts_at", "ends_at", "gates_open_at")}
    errors = {}
    with engine().connect() as conn:
        venue = conn.execute(sa.select(venues).where(
            venues.c.id == (int(f["venue_id"]) if f["venue_id"].isdigit() else -1))).first()
    if venue is None:
        errors["venue_id"] = _("Choose a venue.")
    if not f["event_id"] and not (f["event_code"] and f["event_name"]):
        errors["event_id"] = _("Choose an event, or give a new event's code and name.")
    if not f["name"]:
        errors["name"] = _("A session needs a name.")
    times = {}
    for key in ("starts_at", "ends_at", "gates_open_at"):
        if not f[key]:
            if key != "gates_open_at":
                errors[key] = _("Required.")
            continue
        try:
            times[key] = parse_local(f[key], venue.timezone if venue else "UTC")
        except ValueError:
            errors[key] = _("Not a date and time.")
    if errors:
        refused(_("The session was not created: see the marked fields."))
        return _index({**f, "errors": errors}, 422)
    try:
        with engine().begin() as conn:
            if f["event_id"]:
                event_id = int(f["event_id"]) if f["event_id"].isdigit() else -1
            else:
                event_id = create_event(conn, f["event_code"], f["event_name"], actor=actor(),
                                        discipline=f.get("event_discipline"))
            session_id = create_session(conn, event_id, venue.id, f["name"], times["starts_at"],
                                        times["ends_at"], times.get("gates_open_at"),
                                        actor=actor())
    except HubError as e:
        refused(_("No such event.") if e.code == "unknown_event" else rule_error(e))
        return _index({**f, "errors": {}}, 422)
    ok(_("Session %(name)s created.", name=f["name"]))
    return back("sessions.detail", session_id=session_id)


def _counts(conn: sa.Connection, session_id: int) -> dict:
    now = utcnow()
    reserved = sa.and_(session_seats.c.reserved_for.is_not(None),
                       session_seats.c.reserved_until >= now, session_seats.c.status ==
                       "available")
    rows = conn.execute(
        sa.select(session_seats.c.category, session_seats.c.status,
                  sa.func.count().label("n"),
                  sa.func.sum(sa.case((reserved, 1), else_=0)).label("reserved"))
        .where(session_seats.c.session_id == session_id)
        .group_by(session_seats.c.category, session_seats.c.status)).all()
    out = {c: {"total": 0, "sold": 0, "held": 0, "available": 0, "reserved": 0}
           for c in inventory.CATEGORIES}
    for r in rows:
        out[r.category]["total"] += r.n
        out[r.category][r.status] += r.n
        out[r.category]["reserved"] += int(r.reserved or 0)
    return out


@bp.get("/<int:session_id>")
@permission("sessions.manage")
def detail(session_id: int):
    with engine().connect() as conn:
        s = session_or_404(conn, session_id)
        tiers = conn.execute(sa.select(price_tiers).where(price_tiers.c.session_id == session_id)
                             .order_by(price_tiers.c.amount.desc(), price_tiers.c.code)).all()
        counts = _counts(conn, session_id)
        zone_rows = conn.execute(sa.select(zones).where(zones.c.venue_id == s.venue_id)
                                 .order_by(zones.c.code)).all()
    return render_template("inventory/detail.html", s=s, tiers=tiers, counts=counts,
                           zones=zone_rows, form_local=form_local)


def parse_amount(text: str) -> int | None:
    """``88``, ``88.5`` or ``88.50`` yuan → 8850 fen; None for anything else."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        return None
    return int(value * 100)


@bp.post("/<int:session_id>/tiers")
@permission("sessions.manage")
def create_tier(session_id: int):
    code, name = request.form.get("code", "").strip(), request.form.get("name", "").strip()
    currency = request.form.get("currency", "CNY").strip().upper() or "CNY"
    amount = parse_amount(request.form.get("amount", ""))
    if not code or len(code) > 20 or not name:
        refused(_("A price tier needs a code (up to 20 characters) and a name."))
    elif amount is None:
        refused(_("The price is an amount such as 380 or 380.50."))
    else:
        try:
            with engine().begin() as conn:
                session_or_404(conn, session_id)
                add_price_tier(conn, session_id, code, name, amount, currency, actor=actor())
        except HubError as e:
            refused(rule_error(e))
        else:
            ok(_("Price tier %(code)s added.", code=code))
    return back("sessions.detail", session_id=session_id)


@bp.post("/<int:session_id>/confirm")
@permission("sessions.manage")
def confirm(session_id: int):
    with engine().begin() as conn:
        s = session_or_404(conn, session_id)
        if s.config_confirmed_at is None:
            inventory.confirm_configuration(conn, session_id, actor=actor())
    ok(_("The seat configuration is confirmed: from now on only emergency seats change "
         "category."))
    return back("sessions.detail", session_id=session_id)


@bp.post("/<int:session_id>/on-sale")
@permission("sessions.manage")
def on_sale(session_id: int):
    try:
        with engine().begin() as conn:
            session_or_404(conn, session_id)
            inventory.put_on_sale(conn, session_id, actor=actor())
    except HubError as e:
        refused(_("Confirm the seat configuration before the session goes on sale.")
                if e.code == "not_confirmed" else rule_error(e))
        return back("sessions.detail", session_id=session_id)
    ok(_("The session is on sale."))
    return back("sessions.detail", session_id=session_id)


def _seat_filter(session_id: int, zone: str, row: str):
    cond = [session_seats.c.session_id == session_id, zones.c.code == zone]
    if row:
        cond.append(seats.c.row == row)
    return cond


def _seat_query(session_id: int, zone: str, row: str):
    return (sa.select(session_seats, seats.c.level, seats.c.row, seats.c.number,
                      seats.c.category.label("price_category"), zones.c.code.label("zone"))
            .join(seats, seats.c.id == session_seats.c.seat_id)
            .join(zones, zones.c.id == seats.c.zone_id)
            .where(*_seat_filter(session_id, zone, row))
            .order_by(seats.c.level, seats.c.row, sa.func.length(seats.c.number),
                      seats.c.number))


def _seats_page(session_id: int, zone: str, row: str, status: int = 200):
    with engine().connect() as conn:
        s = session_or_404(conn, session_id)
        zone_rows = conn.execute(sa.select(zones).where(zones.c.venue_id == s.venue_id)
                                 .order_by(zones.c.code)).all()
        if not zone and zone_rows:
            zone = zone_rows[0].code
        rows = conn.execute(_seat_query(session_id, zone, row).limit(SEAT_PAGE)).all()
        total = conn.execute(
            sa.select(sa.func.count()).select_from(session_seats)
            .join(seats, seats.c.id == session_seats.c.seat_id)
            .join(zones, zones.c.id == seats.c.zone_id)
            .where(*_seat_filter(session_id, zone, row))).scalar()
    return render_template("inventory/seats.html", s=s, zones=zone_rows, zone=zone, row=row,
                           seats=rows, total=total, limit=SEAT_PAGE, now=utcnow(),
                           categories=inventory.CATEGORIES,
                           default_until=form_local(utcnow() + timedelta(days=2),
                                                    s.timezone)), status


# The seat page's own words for the reservation rules' refusals.
RESERVE_WORDS = {
    "reservation_customer_bad": lazy_gettext("Give the name of the customer the seats are kept "
                                             "for."),
    "reservation_in_past": lazy_gettext("The reservation must end in the future."),
}


@bp.get("/<int:session_id>/seats")
@permission("seats.manage")
def seat_list(session_id: int):
    return _seats_page(session_id, query_text("zone", 40), query_text("row", 40))


@bp.post("/<int:session_id>/seats")
@permission("seats.manage")
def seat_action(session_id: int):
    zone = request.form.get("zone", "").strip()
    row = request.form.get("row", "").strip()
    action = request.form.get("action")
    with engine().connect() as conn:
        s = session_or_404(conn, session_id)
        if request.form.get("all_matching") == "yes":
            seat_ids = [r.seat_id for r in conn.execute(_seat_query(session_id, zone, row))]
        else:
            seat_ids = sorted({int(v) for v in request.form.getlist("seat") if v.isdigit()})
    if not seat_ids:
        refused(_("Select at least one seat."))
        return _seats_page(session_id, zone, row, 422)
    try:
        with engine().begin() as conn:
            if action == "category":
                inventory.set_category(conn, session_id, seat_ids,
                                       request.form.get("category", ""), actor=actor())
                message = _("%(n)s seats changed category.", n=len(seat_ids))
            elif action == "reserve":
                customer = request.form.get("customer", "")
                try:
                    until = parse_local(request.form.get("until", ""), s.timezone)
                except ValueError:
                    refused(_("Give the date and time until which the seats are kept."))
                    return _seats_page(session_id, zone, row, 422)
                inventory.reserve(conn, session_id, seat_ids,
                                  inventory.typed_customer(customer), until, actor=actor())
                message = _("%(n)s seats reserved.", n=len(seat_ids))
            else:
                abort(400)
    except HubError as e:
        refused(str(RESERVE_WORDS[e.code]) if e.code in RESERVE_WORDS else rule_error(e))
        return _seats_page(session_id, zone, row, 422)
    ok(message)
    return back("sessions.seat_list", session_id=session_id, zone=zone, row=row)


# -- the venue's seat map -------------------------------------------------------------------


def _csv_text(data: bytes) -> str | None:
    """UTF-8 (with or without BOM), else GB 18030 as spreadsheets in China save it."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


@seat_map_bp.post("/<int:venue_id>/seats")
@permission("venues.manage")
def import_seats(venue_id: int):
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        refused(_("Choose a CSV file to import."))
        return venue_page(venue_id, 422)
    text = _csv_text(upload.read())
    if text is None:
        refused(_("The file is neither UTF-8 nor GB 18030 text: save it as CSV (UTF-8)."))
        return venue_page(venue_id, 422)
    with engine().begin() as conn:
        venue_or_404(conn, venue_id)
        report = import_seats_csv(conn, venue_id, text, actor=actor())
    if not report.ok:
        refused(_("The seat map was not changed: %(n)s row errors. Fix them and import the "
                  "whole file again.", n=len(report.errors)))
        return venue_page(venue_id, 422, import_errors=report.errors)
    ok(_("Seat map imported: %(created)s new, %(updated)s changed, %(unchanged)s unchanged.",
         created=report.created, updated=report.updated, unchanged=report.unchanged))
    return back("venues.detail", venue_id=venue_id)


@seat_map_bp.get("/<int:venue_id>/seats.csv")
@permission("venues.view")
def export_seats(venue_id: int):
    with engine().connect() as conn:
        v = venue_or_404(conn, venue_id)
        text = export_seats_csv(conn, venue_id)
    return Response("\ufeff" + text, mimetype="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="seats-venue-{v.id}.csv"'})
