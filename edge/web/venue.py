"""Lanes, gates and zones, and each gate's entry policy.

The hub sends the venue's gates, zones and lanes with the allowlist; these pages edit them on
the appliance (a venue without a hub, or a change that cannot wait). A gate or zone the hub
changes later takes the hub's version again (its change carries a newer version than the
one stored); lanes follow the hub whenever it sends them. Every change is audited with the
state before and after, and the engine picks it up at its next scan (the configuration
version moves by trigger).
"""

from __future__ import annotations

import re
import sqlite3

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from edge import audit
from edge.db import immediate
from edge.web.auth import require
from edge.web.context import get_conn

bp = Blueprint("venue", __name__, url_prefix="/venue")
CODE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
REALNAME_MODES = ("ticket", "ticket_and_id", "id_only")
MAX_MARGIN_MIN = 24 * 60


def _int(value: str | None, low: int, high: int) -> int | None:
    try:
        n = int(value or "")
    except ValueError:
        return None
    return n if low <= n <= high else None


def _gates(conn):
    gates = []
    for row in conn.execute("SELECT id, code, name, reentry, realname_mode, open_before_min, "
                            "close_after_min, manual_entry FROM gates ORDER BY code"):
        zones = [z for (z,) in conn.execute("SELECT zone_id FROM gate_zones WHERE gate_id = ? "
                                            "ORDER BY zone_id", (row[0],))]
        gates.append({"id": row[0], "code": row[1], "name": row[2], "reentry": bool(row[3]),
                      "realname_mode": row[4], "open_before_min": row[5],
                      "close_after_min": row[6], "zones": zones,
                      "manual_entry": bool(row[7])})
    return gates


def _lanes(conn):
    lanes = []
    for row in conn.execute("SELECT l.id, l.code, l.name, l.gate_id, l.direction, "
                            "l.passage_timeout_s, l.enabled FROM lanes l ORDER BY l.code"):
        devices = [d for (d,) in conn.execute("SELECT id FROM devices WHERE lane_id = ? "
                                              "ORDER BY id", (row[0],))]
        lanes.append({"id": row[0], "code": row[1], "name": row[2], "gate_id": row[3],
                      "direction": row[4], "passage_timeout_s": row[5],
                      "enabled": bool(row[6]), "devices": devices})
    return lanes


def _zones(conn):
    return [{"id": r[0], "code": r[1], "name": r[2]}
            for r in conn.execute("SELECT id, code, name FROM zones ORDER BY code")]


@bp.route("/")
@require("admin")
def index():
    conn = get_conn()
    devices = [{"id": r[0], "kind": r[1], "lane_id": r[2]} for r in
               conn.execute("SELECT id, kind, lane_id FROM devices ORDER BY id")]
    return render_template("venue.html", gates=_gates(conn), lanes=_lanes(conn),
                           zones=_zones(conn), devices=devices, modes=REALNAME_MODES)


def _next_id(conn, table: str) -> int:
    return conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0]


def _done(message: str):
    flash(message, "ok")
    return redirect(url_for("venue.index"), 303)


def _refuse(message: str):
    flash(message, "error")
    return redirect(url_for("venue.index"), 303)


@bp.route("/zones", methods=["POST"])
@require("admin")
def zone_save():
    conn = get_conn()
    f = request.form
    code, name = f.get("code", "").strip(), f.get("name", "").strip()[:80]
    if not CODE.match(code) or not name:
        return _refuse(_("A zone needs a code (letters, digits, _ or -) and a name."))
    zone_id = _int(f.get("id"), 1, 2**31)
    with immediate(conn):
        if zone_id is None:
            zone_id = _next_id(conn, "zones")
            conn.execute("INSERT INTO zones (id, code, name) VALUES (?, ?, ?)",
                         (zone_id, code, name))
            audit.record(conn, g.user.username, "zone.create", f"zone:{zone_id}",
                         {"code": code, "name": name})
        else:
            before = conn.execute("SELECT code, name FROM zones WHERE id = ?",
                                  (zone_id,)).fetchone()
            if before is None:
                abort(404)
            conn.execute("UPDATE zones SET code = ?, name = ? WHERE id = ?",
                         (code, name, zone_id))
            audit.record(conn, g.user.username, "zone.update", f"zone:{zone_id}",
                         {"before": {"code": before[0], "name": before[1]},
                          "after": {"code": code, "name": name}})
    return _done(_("Zone saved."))


@bp.route("/gates", methods=["POST"])
@require("admin")
def gate_save():
    """A gate and its entry policy: the zones it admits, re-entry, real-name mode, margins."""
    conn = get_conn()
    f = request.form
    code, name = f.get("code", "").strip(), f.get("name", "").strip()[:80]
    mode = f.get("realname_mode", "ticket")
    before_min = _int(f.get("open_before_min"), 0, MAX_MARGIN_MIN)
    after_min = _int(f.get("close_after_min"), 0, MAX_MARGIN_MIN)
    if not CODE.match(code) or not name:
        return _refuse(_("A gate needs a code (letters, digits, _ or -) and a name."))
    if mode not in REALNAME_MODES:
        return _refuse(_("Unknown real-name mode."))
    if before_min is None or after_min is None:
        return _refuse(_("Margins are whole minutes from 0 to 1440."))
    zones = sorted({int(z) for z in f.getlist("zones") if z.isdigit()})
    policy = {"code": code, "name": name, "reentry": f.get("reentry") == "1",
              "realname_mode": mode, "open_before_min": before_min,
              "close_after_min": after_min, "zones": zones,
              "manual_entry": f.get("manual_entry") == "1"}
    gate_id = _int(f.get("id"), 1, 2**31)
    try:
        with immediate(conn):
            known = {z for (z,) in conn.execute("SELECT id FROM zones")}
            if not set(zones) <= known:
                return _refuse(_("No such zone."))
            if gate_id is None:
                gate_id = _next_id(conn, "gates")
                conn.execute("INSERT INTO gates (id, code, name) VALUES (?, ?, ?)",
                             (gate_id, code, name))
                before = None
            else:
                before = next((gt for gt in _gates(conn) if gt["id"] == gate_id), None)
                if before is None:
                    abort(404)
            conn.execute("UPDATE gates SET code = ?, name = ?, reentry = ?, realname_mode = ?, "
                         "open_before_min = ?, close_after_min = ? WHERE id = ?",
                         (code, name, int(policy["reentry"]), mode, before_min, after_min,
                          gate_id))
            conn.execute("UPDATE gates SET manual_entry = ? WHERE id = ?",
                         (int(policy["manual_entry"]), gate_id))
            conn.execute("DELETE FROM gate_zones WHERE gate_id = ?", (gate_id,))
            conn.executemany("INSERT INTO gate_zones (gate_id, zone_id) VALUES (?, ?)",
                             [(gate_id, z) for z in zones])
            if before is not None:
                before = {k: v for k, v in before.items() if k != "id"}
            audit.record(conn, g.user.username, "gate.create" if before is None
                         else "gate.update", f"gate:{gate_id}",
                         {"before": before, "after": policy})
    except sqlite3.IntegrityError:
        return _refuse(_("Another gate already has this code."))
    return _done(_("Gate saved."))


@bp.route("/lanes", methods=["POST"])
@require("admin")
def lane_save():
    """A lane: its gate, direction, passage timeout and the devices that form it."""
    conn = get_conn()
    f = request.form
    code, name = f.get("code", "").strip(), f.get("name", "").strip()[:80]
    gate_id = _int(f.get("gate_id"), 1, 2**31)
    direction = f.get("direction", "in")
    timeout = _int(f.get("passage_timeout_s"), 1, 600)
    if not CODE.match(code):
        return _refuse(_("A lane needs a code (letters, digits, _ or -)."))
    if direction not in ("in", "out"):
        return _refuse(_("A lane's direction is in or out."))
    if timeout is None:
        return _refuse(_("The passage timeout is 1 to 600 seconds."))
    devices = sorted(set(f.getlist("devices")))
    lane = {"code": code, "name": name, "gate_id": gate_id, "direction": direction,
            "passage_timeout_s": timeout, "enabled": f.get("enabled") == "1",
            "devices": devices}
    lane_id = _int(f.get("id"), 1, 2**31)
    try:
        with immediate(conn):
            if gate_id is None or not conn.execute("SELECT 1 FROM gates WHERE id = ?",
                                                   (gate_id,)).fetchone():
                return _refuse(_("Choose the lane's gate."))
            known = {d for (d,) in conn.execute("SELECT id FROM devices")}
            if not set(devices) <= known:
                return _refuse(_("No such device."))
            if lane_id is None:
                lane_id = _next_id(conn, "lanes")
                conn.execute("INSERT INTO lanes (id, code, gate_id) VALUES (?, ?, ?)",
                             (lane_id, code, gate_id))
                before = None
            else:
                before = next((ln for ln in _lanes(conn) if ln["id"] == lane_id), None)
                if before is None:
                    abort(404)
                before.pop("id")
            conn.execute("UPDATE lanes SET code = ?, name = ?, gate_id = ?, direction = ?, "
                         "passage_timeout_s = ?, enabled = ? WHERE id = ?",
                         (code, name, gate_id, direction, timeout, int(lane["enabled"]),
                          lane_id))
            conn.execute("UPDATE devices SET lane_id = NULL WHERE lane_id = ?", (lane_id,))
            conn.executemany("UPDATE devices SET lane_id = ? WHERE id = ?",
                             [(lane_id, d) for d in devices])
            audit.record(conn, g.user.username, "lane.create" if before is None
                         else "lane.update", f"lane:{lane_id}", {"before": before, "after": lane})
    except sqlite3.IntegrityError:
        return _refuse(_("Another lane already has this code."))
    return _done(_("Lane saved."))
