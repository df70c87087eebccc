"""Devices: add, edit, enable/disable, delete, and a test per device kind.

The device rows are the gate runtime's configuration: it reads them, opens each enabled
device and reports its state back into the row. A test is a ``device_commands`` row the
runtime carries out (see :mod:`edge.commands`); the page polls for its result.
"""

from __future__ import annotations

import json

import segno
from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from edge import commands, handhelds, hardware, venue_config
from edge.gates.devices import config_problem
from edge.web import device_forms
from edge.web.auth import require
from edge.web.context import get_conn
from sync.timeutil import to_iso

bp = Blueprint("devices", __name__, url_prefix="/devices")


def _lanes(conn):
    return conn.execute("SELECT id, code, name FROM lanes ORDER BY code").fetchall()


def _device(conn, device_id: str) -> dict | None:
    row = conn.execute("SELECT d.id, d.kind, d.name, d.lane_id, d.config, d.enabled, d.state, "
                       "d.state_detail, d.state_at, l.code FROM devices d LEFT JOIN lanes l "
                       "ON l.id = d.lane_id WHERE d.id = ?", (device_id,)).fetchone()
    if row is None:
        return None
    config = json.loads(row[4] or "{}")
    return {"id": row[0], "kind": row[1], "name": row[2], "lane_id": row[3], "config": config,
            "connection": config.get(device_forms.CONNECTION_KEY.get(row[1], "port"), ""),
            "enabled": bool(row[5]), "state": row[6], "state_detail": row[7] or "",
            "state_at": row[8], "lane": row[9]}


def _found():
    return {"serial": hardware.serial_ports(), "cameras": hardware.cameras(),
            "pcsc": hardware.pcsc_readers()}


def _form(conn, existing: dict | None) -> tuple[dict, list[str]]:
    """The device described by the submitted form, and what is wrong with it."""
    f = request.form
    device_id = existing["id"] if existing else f.get("id", "").strip()
    kind = f.get("kind", "")
    lane_id = f.get("lane_id") or None
    if lane_id is not None and lane_id.isdigit():
        lane_id = int(lane_id)
    errors = [REFUSALS[code]() for code in
              venue_config.device_problems(conn, device_id, kind, lane_id)]
    connection = (f.get("connection") or f.get("connection_found") or "").strip()
    if kind == device_forms.TURNSTILE:  # a form per driver, never JSON
        config, wrong = device_forms.turnstile_config(f, device_id, connection)
        errors += wrong
        return {"id": device_id, "kind": kind, "name": f.get("name", "").strip()[:80],
                "lane_id": lane_id, "config": config, "connection": connection,
                "enabled": f.get("enabled") == "1", "submitted": f.to_dict()}, errors
    try:
        extra = json.loads(f.get("settings") or "{}")
        if not isinstance(extra, dict):
            raise ValueError
    except ValueError:
        errors.append(_("Settings must be a JSON object, e.g. {\"baudrate\": 9600}."))
        extra = {}
    config = dict(extra)
    if connection:
        config[device_forms.CONNECTION_KEY.get(kind, "port")] = connection
    if not errors:
        problem = config_problem(kind, config)
        if problem is not None:  # as the gate runtime would refuse it: name the setting
            errors.append(_("Settings: %(problem)s", problem=problem))
    return {"id": device_id, "kind": kind, "name": f.get("name", "").strip()[:80],
            "lane_id": lane_id, "config": config, "connection": connection,
            "enabled": f.get("enabled") == "1"}, errors


REFUSALS = {
    "bad_device_id": lambda: _("A device id is 1 to 40 letters, digits or . _ -"),
    "bad_device_kind": lambda: _("Choose the kind of device."),
    "unknown_lane": lambda: _("No such lane."),
    "device_exists": lambda: _("There is already a device with this id."),
}
_SAVED = ("kind", "name", "lane_id", "config", "enabled")


@bp.route("/", methods=["GET", "POST"])
@require("admin")
def index():
    conn = get_conn()
    errors: list[str] = []
    draft = None
    if request.method == "POST":
        draft, errors = _form(conn, None)
        if not errors:
            try:
                venue_config.create_device(conn, g.user.username, device_id=draft["id"],
                                           **{k: draft[k] for k in _SAVED})
            except venue_config.VenueConfigError as e:
                errors.append(REFUSALS[e.code]())
            if not errors:
                flash(_("Device added."), "ok")
                return redirect(url_for("devices.edit", device_id=draft["id"]), 303)
    return _index_page(conn, errors=errors, draft=draft), (400 if errors else 200)


def _index_page(conn, **extra) -> str:
    devices = [_device(conn, r[0]) for r in conn.execute(
        "SELECT id FROM devices WHERE kind != ? ORDER BY id", (handhelds.DEVICE_KIND,))]
    values = {"errors": [], "draft": None, "pairing_errors": [], "pairing_draft": None, **extra}
    draft = values["draft"]
    return render_template("devices.html", devices=devices, lanes=_lanes(conn),
                           kinds=commands.DEVICE_KINDS, found=_found(),
                           handhelds=handhelds.list_handhelds(conn),
                           **_turnstile(draft, draft), **values)


def _turnstile(device: dict | None, draft: dict | None) -> dict:
    """The per-driver turnstile forms for the device form, with what was submitted kept."""
    submitted = (draft or {}).get("submitted")
    return {"turnstile_forms": device_forms.turnstile_forms(device, submitted),
            "turnstile_model": (submitted or {}).get("model")
            or device_forms.current_model(device)}


# -- handhelds -----------------------------------------------------------------------------


PAIRING_ERRORS = {
    "bad_name": lambda e: _("A handheld needs a name of 1 to %(n)s characters.",
                            n=handhelds.MAX_NAME),
    "unknown_lane": lambda e: _("No such lane."),
}


@bp.post("/handhelds/pair")
@require("admin")
def pair_handheld():
    """A one-time pairing code for one handheld, shown once (as text and as a QR code that
    opens the handheld page with the code)."""
    conn = get_conn()
    name = request.form.get("name", "")
    lanes = request.form.getlist("lane")
    try:
        pairing = handhelds.create_pairing(conn, name, lanes, actor=g.user.username)
    except handhelds.HandheldError as e:
        words = PAIRING_ERRORS.get(e.code, lambda e: e.message)(e)
        return _index_page(conn, pairing_errors=[words],
                           pairing_draft={"name": name, "lanes": lanes}), 400
    url = f"{request.host_url}handheld/#code={pairing.code}"
    return render_template("handheld_code.html", pairing=pairing, url=url, qr=qr_svg(url),
                           expires_at=to_iso(pairing.expires_at),
                           page_url=f"{request.host_url}handheld/")


@bp.post("/handhelds/<device_id>/revoke")
@require("admin")
def revoke_handheld(device_id: str):
    conn = get_conn()
    if not any(h["device_id"] == device_id for h in handhelds.list_handhelds(conn)):
        abort(404)
    handhelds.revoke(conn, device_id, g.user.username)
    flash(_("Handheld %(name)s revoked: it must be paired again to scan.", name=device_id),
          "ok")
    return redirect(url_for("devices.index") + "#handhelds", 303)


def qr_svg(data: str) -> Markup:
    """A QR code (never a Micro QR, which phones do not read) as inline SVG."""
    return Markup(segno.make(data, error="m", micro=False).svg_inline(
        scale=4, border=4, dark="#000", light="#fff", title=None))


@bp.route("/<device_id>", methods=["GET", "POST"])
@require("admin")
def edit(device_id: str):
    conn = get_conn()
    device = _device(conn, device_id)
    if device is None:
        abort(404)
    errors: list[str] = []
    draft = None
    if request.method == "POST":
        draft, errors = _form(conn, device)
        if not errors:
            try:
                venue_config.update_device(conn, g.user.username, device_id,
                                           **{k: draft[k] for k in _SAVED})
            except venue_config.VenueConfigError as e:
                if e.code != "not_found":
                    raise
                abort(404)  # deleted since the look above
            flash(_("Device saved."), "ok")
            return redirect(url_for("devices.edit", device_id=device_id), 303)
    return render_template("device.html", device=device, lanes=_lanes(conn),
                           kinds=commands.DEVICE_KINDS, found=_found(), errors=errors,
                           tests=commands.recent_commands(conn, device_id),
                           **_turnstile(device, draft)), (400 if errors else 200)


@bp.route("/<device_id>/enabled", methods=["POST"])
@require("admin")
def set_enabled(device_id: str):
    conn = get_conn()
    enabled = request.form.get("enabled") == "1"
    try:
        venue_config.set_device_enabled(conn, g.user.username, device_id, enabled)
    except venue_config.VenueConfigError:
        abort(404)
    flash(_("Device enabled.") if enabled else _("Device disabled."), "ok")
    return redirect(request.form.get("back") == "list" and url_for("devices.index")
                    or url_for("devices.edit", device_id=device_id), 303)


@bp.route("/<device_id>/delete", methods=["POST"])
@require("admin")
def delete(device_id: str):
    try:
        venue_config.delete_device(get_conn(), g.user.username, device_id)
    except venue_config.VenueConfigError:
        abort(404)
    flash(_("Device deleted."), "ok")
    return redirect(url_for("devices.index"), 303)


@bp.route("/<device_id>/test", methods=["POST"])
@require("admin")
def test(device_id: str):
    conn = get_conn()
    try:
        cid = commands.request_test(conn, device_id, g.user.username)
    except commands.CommandError as e:
        if e.code == "not_found":
            abort(404)
        if request.headers.get("X-Requested-With") == "fetch":
            return jsonify({"error": e.code, "message": _("The device is disabled: enable it "
                                                          "to test it.")}), 409
        flash(_("The device is disabled: enable it to test it."), "error")
        return redirect(url_for("devices.edit", device_id=device_id), 303)
    if request.headers.get("X-Requested-With") == "fetch":
        return jsonify(commands.get_command(conn, cid)), 201
    flash(_("Test requested: the result appears below when the gate runtime has done it."),
          "ok")
    return redirect(url_for("devices.edit", device_id=device_id), 303)


@bp.route("/commands/<int:command_id>.json")
@require("admin")
def command(command_id: int):
    found = commands.get_command(get_conn(), command_id)
    if found is None:
        abort(404)
    return jsonify(found)
