"""Venues: the list, a venue's zones, gates and seat map; seat maps imported and exported as
CSV. Everyone reads; only admins change a venue."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, render_template, request
from flask_babel import gettext as _

from cloud.catalog.errors import CatalogError
from cloud.catalog.tables import gate_zones, gates, seats, venues, zones
from cloud.catalog.venues import add_gate, add_zone, create_venue, update_gate
from cloud.web.web import actor, back, engine, int_field, ok, page_blueprint, permission, refused
from cloud.web.words import rule_error
from sync.changes import REALNAME_MODES

bp = page_blueprint("venues", "/venues")
CODE_MAX = 40


def venue_or_404(conn: sa.Connection, venue_id: int):
    v = conn.execute(sa.select(venues).where(venues.c.id == venue_id)).first()
    if v is None:
        abort(404)
    return v


def all_venues(conn: sa.Connection) -> list:
    return conn.execute(sa.select(venues).order_by(venues.c.code)).all()


def _index(form: dict, status: int = 200):
    with engine().connect() as conn:
        rows = conn.execute(
            sa.select(venues, sa.func.count(seats.c.id).label("seats"))
            .outerjoin(seats, sa.and_(seats.c.venue_id == venues.c.id,
                                      seats.c.removed.is_(False)))
            .group_by(*venues.c).order_by(venues.c.code)).all()
    return render_template("catalog/index.html", venues=rows, form=form), status


@bp.get("")
@permission("venues.view")
def index():
    return _index({})


@bp.post("")
@permission("venues.manage")
def create():
    form = {k: request.form.get(k, "").strip() for k in ("code", "name", "address", "timezone")}
    error = None
    if not form["code"] or len(form["code"]) > CODE_MAX or not form["name"]:
        error = _("A venue needs a code (up to 40 characters) and a name.")
    else:
        try:
            with engine().begin() as conn:
                venue_id = create_venue(conn, form["code"], form["name"], form["address"],
                                        form["timezone"] or "Asia/Shanghai", actor=actor())
        except CatalogError as e:
            error = rule_error(e)
        else:
            ok(_("Venue %(code)s created.", code=form["code"]))
            return back("venues.detail", venue_id=venue_id)
    refused(error)
    return _index(form, 422)


def venue_page(venue_id: int, status: int = 200, **extra):
    with engine().connect() as conn:
        v = venue_or_404(conn, venue_id)
        zone_rows = conn.execute(
            sa.select(zones, sa.func.count(seats.c.id).label("seats"))
            .outerjoin(seats, sa.and_(seats.c.zone_id == zones.c.id,
                                      seats.c.removed.is_(False)))
            .where(zones.c.venue_id == venue_id).group_by(*zones.c)
            .order_by(zones.c.code)).all()
        gate_rows = conn.execute(sa.select(gates).where(gates.c.venue_id == venue_id)
                                 .order_by(gates.c.code)).all()
        gz: dict[int, list[str]] = {}
        for gate_id, code in conn.execute(
                sa.select(gate_zones.c.gate_id, zones.c.code)
                .join(zones, zones.c.id == gate_zones.c.zone_id)
                .where(zones.c.venue_id == venue_id).order_by(zones.c.code)):
            gz.setdefault(gate_id, []).append(code)
        damaged = conn.execute(sa.select(sa.func.count()).select_from(seats).where(
            seats.c.venue_id == venue_id, seats.c.damaged, seats.c.removed.is_(False))).scalar()
    return render_template("catalog/detail.html", venue=v, zones=zone_rows, gates=gate_rows,
                           gate_zones=gz, damaged=damaged, modes=REALNAME_MODES,
                           **extra), status


@bp.get("/<int:venue_id>")
@permission("venues.view")
def detail(venue_id: int):
    return venue_page(venue_id)


@bp.post("/<int:venue_id>/zones")
@permission("venues.manage")
def create_zone(venue_id: int):
    code, name = request.form.get("code", "").strip(), request.form.get("name", "").strip()
    if not code or len(code) > CODE_MAX or not name:
        refused(_("A zone needs a code (up to 40 characters) and a name."))
        return venue_page(venue_id, 422)
    try:
        with engine().begin() as conn:
            venue_or_404(conn, venue_id)
            add_zone(conn, venue_id, code, name, actor=actor())
    except CatalogError as e:
        refused(rule_error(e))
        return venue_page(venue_id, 422)
    ok(_("Zone %(code)s added.", code=code))
    return back("venues.detail", venue_id=venue_id)


def _gate_form(code_required: bool = True) -> tuple[dict, str | None]:
    f = {"code": request.form.get("code", "").strip(), "name": request.form.get("name", "").strip(),
         "realname_mode": request.form.get("realname_mode", "ticket"),
         "open_before_min": int_field("open_before_min", 0, 1440, 30),
         "close_after_min": int_field("close_after_min", 0, 1440, 60),
         "reentry": request.form.get("reentry") == "yes", "zones": request.form.getlist("zone"),
         "manual_entry": request.form.get("manual_entry") == "yes"}
    error = None
    if (code_required and (not f["code"] or len(f["code"]) > CODE_MAX)) or not f["name"]:
        error = _("A gate needs a code (up to 40 characters) and a name.")
    elif f["realname_mode"] not in REALNAME_MODES:
        error = _("Choose one of the real-name modes.")
    elif f["open_before_min"] is None or f["close_after_min"] is None:
        error = _("Minutes before and after are whole numbers from 0 to 1440.")
    return f, error


@bp.post("/<int:venue_id>/gates")
@permission("venues.manage")
def create_gate(venue_id: int):
    f, error = _gate_form()
    code = f["code"]
    if error is None:
        try:
            with engine().begin() as conn:
                venue_or_404(conn, venue_id)
                add_gate(conn, venue_id, code, f["name"], f["zones"], reentry=f["reentry"],
                         realname_mode=f["realname_mode"],
                         open_before_min=f["open_before_min"],
                         close_after_min=f["close_after_min"], actor=actor(),
                         manual_entry=f["manual_entry"])
        except CatalogError as e:
            error = rule_error(e)
    if error:
        refused(error)
        return venue_page(venue_id, 422)
    ok(_("Gate %(code)s added.", code=code))
    return back("venues.detail", venue_id=venue_id)


def _gate_or_404(conn: sa.Connection, venue_id: int, gate_id: int):
    gate = conn.execute(sa.select(gates).where(gates.c.id == gate_id,
                                               gates.c.venue_id == venue_id)).first()
    if gate is None:
        abort(404)
    return gate


def _gate_page(venue_id: int, gate_id: int, status: int = 200):
    with engine().connect() as conn:
        v = venue_or_404(conn, venue_id)
        gate = _gate_or_404(conn, venue_id, gate_id)
        zone_rows = conn.execute(sa.select(zones).where(zones.c.venue_id == venue_id)
                                 .order_by(zones.c.code)).all()
        admitted = set(conn.execute(sa.select(gate_zones.c.zone_id)
                                    .where(gate_zones.c.gate_id == gate_id)).scalars())
    return render_template("catalog/gate.html", venue=v, gate=gate, zones=zone_rows,
                           admitted=admitted, modes=REALNAME_MODES), status


@bp.get("/<int:venue_id>/gates/<int:gate_id>")
@permission("venues.view")
def gate(venue_id: int, gate_id: int):
    return _gate_page(venue_id, gate_id)


@bp.post("/<int:venue_id>/gates/<int:gate_id>")
@permission("venues.manage")
def edit_gate(venue_id: int, gate_id: int):
    f, error = _gate_form(code_required=False)
    if error is None:
        try:
            with engine().begin() as conn:
                _gate_or_404(conn, venue_id, gate_id)
                update_gate(conn, gate_id, f["name"], f["zones"], f["reentry"],
                            f["realname_mode"], f["open_before_min"], f["close_after_min"],
                            actor=actor(), manual_entry=f["manual_entry"])
        except CatalogError as e:
            error = rule_error(e)
    if error:
        refused(error)
        return _gate_page(venue_id, gate_id, 422)
    ok(_("Gate saved: the venue's appliances take it at their next sync."))
    return back("venues.detail", venue_id=venue_id)
