"""Lanes, gates and zones, and each gate's entry policy.

The hub sends the venue's gates, zones and lanes with the allowlist; these pages edit them on
the appliance (a venue without a hub, or a change that cannot wait). A gate or zone the hub
changes later takes the hub's version again (its change carries a newer version than the
one stored); lanes follow the hub whenever it sends them. ``edge/venue_config.py`` writes every
change, audited with the state before and after; this page only reads the form and puts the
refusals in words. The engine picks a change up at its next scan (the configuration version
moves by trigger).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from edge import venue_config
from edge.venue_config import VenueConfigError
from edge.web.auth import require
from edge.web.context import get_conn

bp = Blueprint("venue", __name__, url_prefix="/venue")
REALNAME_MODES = venue_config.REALNAME_MODES


def _int(value: str | None, low: int, high: int) -> int | None:
    try:
        n = int(value or "")
    except ValueError:
        return None
    return n if low <= n <= high else None


def _number(value: str | None) -> int | None:
    """A whole number as typed, or None (the rules say what range it must be in)."""
    try:
        return int(value or "")
    except ValueError:
        return None


@bp.route("/")
@require("admin")
def index():
    conn = get_conn()
    devices = [{"id": r[0], "kind": r[1], "lane_id": r[2]} for r in
               conn.execute("SELECT id, kind, lane_id FROM devices ORDER BY id")]
    return render_template("venue.html", gates=venue_config.gates(conn),
                           lanes=venue_config.lanes(conn), zones=_zones(conn), devices=devices,
                           modes=REALNAME_MODES)


def _zones(conn):
    return [{"id": r[0], "code": r[1], "name": r[2]}
            for r in conn.execute("SELECT id, code, name FROM zones ORDER BY code")]


def _done(message: str):
    flash(message, "ok")
    return redirect(url_for("venue.index"), 303)


def _refuse(message: str):
    flash(message, "error")
    return redirect(url_for("venue.index"), 303)


REFUSALS = {
    "bad_zone": lambda e: _("A zone needs a code (letters, digits, _ or -) and a name."),
    "bad_gate": lambda e: _("A gate needs a code (letters, digits, _ or -) and a name."),
    "bad_realname_mode": lambda e: _("Unknown real-name mode."),
    "bad_margins": lambda e: _("Margins are whole minutes from 0 to 1440."),
    "unknown_zone": lambda e: _("No such zone."),
    "gate_code_taken": lambda e: _("Another gate already has this code."),
    "bad_lane_code": lambda e: _("A lane needs a code (letters, digits, _ or -)."),
    "bad_direction": lambda e: _("A lane's direction is in or out."),
    "bad_passage_timeout": lambda e: _("The passage timeout is 1 to 600 seconds."),
    "unknown_gate": lambda e: _("Choose the lane's gate."),
    "unknown_device": lambda e: _("No such device."),
    "lane_code_taken": lambda e: _("Another lane already has this code."),
}


def _refused(e: VenueConfigError):
    if e.code == "not_found":
        abort(404)
    return _refuse(REFUSALS[e.code](e))


@bp.route("/zones", methods=["POST"])
@require("admin")
def zone_save():
    f = request.form
    try:
        venue_config.save_zone(get_conn(), g.user.username, f.get("code", "").strip(),
                               f.get("name", "").strip(), _int(f.get("id"), 1, 2**31))
    except VenueConfigError as e:
        return _refused(e)
    return _done(_("Zone saved."))


@bp.route("/gates", methods=["POST"])
@require("admin")
def gate_save():
    """A gate and its entry policy: the zones it admits, re-entry, real-name mode, margins."""
    f = request.form
    try:
        venue_config.save_gate(
            get_conn(), g.user.username, code=f.get("code", "").strip(),
            name=f.get("name", "").strip(), reentry=f.get("reentry") == "1",
            realname_mode=f.get("realname_mode", "ticket"),
            open_before_min=_number(f.get("open_before_min")),
            close_after_min=_number(f.get("close_after_min")),
            zones=[int(z) for z in f.getlist("zones") if z.isdigit()],
            manual_entry=f.get("manual_entry") == "1", gate_id=_int(f.get("id"), 1, 2**31))
    except VenueConfigError as e:
        return _refused(e)
    return _done(_("Gate saved."))


@bp.route("/lanes", methods=["POST"])
@require("admin")
def lane_save():
    """A lane: its gate, direction, passage timeout and the devices that form it."""
    f = request.form
    try:
        venue_config.save_lane(
            get_conn(), g.user.username, code=f.get("code", "").strip(),
            name=f.get("name", "").strip(), gate_id=_int(f.get("gate_id"), 1, 2**31),
            direction=f.get("direction", "in"),
            passage_timeout_s=_number(f.get("passage_timeout_s")),
            enabled=f.get("enabled") == "1", devices=f.getlist("devices"),
            lane_id=_int(f.get("id"), 1, 2**31))
    except VenueConfigError as e:
        return _refused(e)
    return _done(_("Lane saved."))
