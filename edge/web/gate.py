"""The gate-staff screen: one lane or several, a verdict readable in one glance, the live feed,
manual and keyboard-wedge scans, the supervisor's override and the help desk's check.

A wedged or pasted scan is a reader's scan (``/gate/scan.json``): a signed code or nothing. A
ticket number typed by the signed-in staff member is a separate act (``/gate/manual.json``),
offered only at lanes whose gate admits by number (its ``manual_entry`` policy) and recorded
as a ``manual`` scan naming the staff member.

Scans typed or wedged here go through the same ``Engine.decide`` as every lane; an admitted
scan asks the gate runtime to open the lane. At a lane with a turnstile the admission waits
for its passage like a lane's own scan; when the turnstile is down or not reporting it is
annulled at once, and the screen shows "Valid — lane did not open" (``edge/web/outcome.py``)
instead of "go ahead". The feed carries each entry's outcome, and the screen asks again about
the admissions it shows until their passage has settled. "Check" runs ``Engine.check``: the same answer,
nothing recorded, no lane opened. An override ("open anyway") needs a supervisor and a
reason; it is recorded as an admitted entry whose detail says who and why, an ``open_lane``
command for the runtime, and an audit row, all in one transaction.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, abort, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _

from edge import audit, commands, entries, passages, status
from edge.db import immediate
from edge.engine import Decision, Scan, ScanKind, UnknownLane
from edge.reasons import Reason, colour, words
from edge.web import detail_words, outcome
from edge.web.auth import require
from edge.web.context import get_conn, get_engine
from edge.web.i18n import current_language
from edge.web.query import query_int
from sync.timeutil import from_iso, to_iso, utcnow

log = logging.getLogger(__name__)
bp = Blueprint("gate", __name__, url_prefix="/gate")
MAX_INPUT = 2048
FEED_LIMIT = 30
MAX_WATCH = 20  # admissions a screen may ask about at once (?watch=ENTRY_ID)
MIN_OVERRIDE_REASON = 4
MAX_OVERRIDE_REASON = 200


def _local(conn, iso: str | None) -> str | None:
    if not iso:
        return None
    return from_iso(iso).astimezone(status.venue_tz(conn)).strftime("%Y-%m-%d %H:%M:%S")


def _lanes(conn) -> list[dict]:
    return [{"id": r[0], "code": r[1], "name": r[2], "direction": r[3], "gate": r[4],
             "gate_name": r[5], "manual_entry": bool(r[6])}
            for r in conn.execute("SELECT l.id, l.code, l.name, l.direction, g.code, g.name, "
                                  "g.manual_entry FROM lanes l JOIN gates g ON g.id = l.gate_id "
                                  "WHERE l.enabled = 1 ORDER BY l.code")]


@bp.route("/")
def screen():
    conn = get_conn()
    lanes = _lanes(conn)
    chosen = [c for c in request.args.getlist("lane") if c]
    known = {lane["code"] for lane in lanes}
    chosen = [c for c in dict.fromkeys(chosen) if c in known][:6]
    return render_template("gate.html", lanes=lanes,
                           chosen=[lane for lane in lanes if lane["code"] in chosen],
                           help_desk=request.args.get("mode") == "check",
                           fade_s=current_app.config.get("VERDICT_FADE_S", 0),
                           devices=outcome.lane_devices(conn, chosen))


def verdict_json(conn, d: Decision, lang: str, checked_only: bool = False) -> dict:
    """What the screen shows for a decision, after what its lane did (an admission annulled
    because the lane did not open is amber, not green); holder data only masked."""
    t = d.ticket
    seen = {"colour": colour(d.reason), "words": words(d.reason, lang),
            "detail": detail_words.translate(d.detail_code, d.detail_params, d.detail),
            "admitted": d.reason is Reason.OK, "settled": True, "not_opened": False}
    if d.entry_id is not None:
        row = conn.execute("SELECT reason, passage, detail FROM entries WHERE id = ?",
                           (d.entry_id,)).fetchone()
        if row is not None:  # an opening asked of the runtime is pending until it is done
            opening = row[1] is None and d.entry_id in commands.pending_openings(
                conn, [d.entry_id])
            seen = outcome.shown(row[0], "pending" if opening else row[1], row[2] or "",
                                 lang, d.detail_code, d.detail_params)
    return {
        "reason": str(d.reason),
        **seen,
        "open_lane": d.open_lane and not seen["not_opened"],
        "checked_only": checked_only,
        "lane": d.lane,
        "direction": d.direction,
        "entry_id": d.entry_id,
        "at": _local(conn, to_iso(d.at)),
        "ticket": None if t is None else {
            "number": t.number, "role": t.role, "zone": t.zone, "seat": t.seat,
            "session": t.session},
        "holder": None if d.holder_masked is None else {
            "name": d.holder_masked.name, "document": d.holder_masked.document},
        "first_entry_at": _local(conn, to_iso(d.first_entry_at)) if d.first_entry_at else None,
        "offline_code": d.offline_code,
    }


def _body() -> dict:
    data = request.get_json(silent=True)
    if data is None:
        data = request.form.to_dict()
    if not isinstance(data, dict):
        abort(400)
    return data


def _bad(message: str, status_code: int = 400):
    return jsonify({"error": "bad_request", "message": message}), status_code


def _decide(conn, scan_: Scan, lane: str, mode: str, why: str) -> Decision:
    """Check, or decide and act on, a scan from the screen: an admission asks the gate runtime
    to open the lane, or, where the lane's turnstile cannot open (down, not reporting), is
    annulled at once and the ticket stays unused. Raises ``UnknownLane``."""
    engine = get_engine()
    if mode == "check":
        return engine.check(scan_, lane)
    turnstile = outcome.lane_turnstile(conn, lane)
    # pending from the start where it will be annulled at once: never sent as admitted
    d = engine.decide(scan_, lane, passage=bool(turnstile and turnstile[1]))
    if d.open_lane and turnstile is not None and turnstile[1]:
        passages.annul(conn, d.entry_id, utcnow(), passages.FAILED,
                       f"lane not opened: {turnstile[1]}")
    elif d.open_lane:
        with immediate(conn):
            lane_id = conn.execute("SELECT id FROM lanes WHERE code = ?", (lane,)).fetchone()[0]
            commands.request_open(conn, lane_id, g.user.username,
                                  {"entry_id": d.entry_id, "why": why})
    return d


@bp.route("/scan.json", methods=["POST"])
def scan():
    """Decide one scan from the screen: ``{"lane", "code", "kind": "qr", "mode":
    "admit"|"check"}`` (typed ticket numbers go to ``/gate/manual.json``)."""
    data = _body()
    lane = str(data.get("lane", ""))
    code = str(data.get("code", ""))[:MAX_INPUT]
    if data.get("kind", "qr") != "qr":
        return _bad(_("kind: a scan here is what a scanner read; type ticket numbers in the "
                      "ticket-number field."))
    kind = ScanKind.QR
    mode = data.get("mode", "admit")
    if mode not in ("admit", "check"):
        return _bad(_("Unknown mode."))
    if not code.strip():
        return _bad(_("Scan or type a code first."))
    conn = get_conn()
    if not conn.execute("SELECT 1 FROM lanes WHERE code = ? AND enabled = 1",
                        (lane,)).fetchone():
        return _bad(_("Choose a lane first."))
    scan_ = Scan(kind, code, device_id=f"web:{g.user.username}")
    lang = current_language()
    try:
        d = _decide(conn, scan_, lane, mode, "scan")
    except UnknownLane:  # disabled or removed since the look above
        return _bad(_("Choose a lane first."))
    if mode == "check":
        audit.record(conn, g.user.username, "entry.check", f"lane:{lane}",
                     {"reason": str(d.reason), "ticket_id": d.ticket.id if d.ticket else None})
        return jsonify(verdict_json(conn, d, lang, checked_only=True))
    log.info("lane %s: screen scan by %s: %s", lane, g.user.username, d.reason)
    return jsonify(verdict_json(conn, d, lang))


@bp.route("/manual.json", methods=["POST"])
def manual():
    """Admit (or, at the help desk, check) on a ticket number typed by the signed-in staff
    member: ``{"lane", "code", "mode": "admit"|"check"}``. Refused with 403 at a lane whose
    gate does not admit by ticket number; the engine enforces the same policy."""
    data = _body()
    lane = str(data.get("lane", ""))
    code = str(data.get("code", ""))[:MAX_INPUT]
    mode = data.get("mode", "admit")
    if mode not in ("admit", "check"):
        return _bad(_("Unknown mode."))
    if not code.strip():
        return _bad(_("Type a ticket number first."))
    conn = get_conn()
    row = conn.execute("SELECT g.manual_entry FROM lanes l JOIN gates g ON g.id = l.gate_id "
                       "WHERE l.code = ? AND l.enabled = 1", (lane,)).fetchone()
    if row is None:
        return _bad(_("Choose a lane first."))
    if not row[0]:
        return _bad(_("Ticket numbers are not accepted at this gate."), 403)
    user = g.user.username
    scan_ = Scan(ScanKind.MANUAL, code, device_id=f"web:{user}", staff=user)
    try:
        d = _decide(conn, scan_, lane, mode, "manual")
    except UnknownLane:  # disabled or removed since the look above
        return _bad(_("Choose a lane first."))
    audit.record(conn, user, "entry.check_number" if mode == "check" else "entry.manual",
                 f"lane:{lane}", {"entry_id": d.entry_id, "reason": str(d.reason),
                                  "ticket_id": d.ticket.id if d.ticket else None})
    log.info("lane %s: ticket number typed by %s: %s", lane, user, d.reason)
    out = verdict_json(conn, d, current_language(), checked_only=mode == "check")
    out.update(by_number=d.by_number, staff=d.staff)
    return jsonify(out)


@bp.route("/override.json", methods=["POST"])
@require("supervisor")
def override():
    """Open the lane anyway. ``{"lane", "reason", "entry_id"?}``: the refused entry it answers
    (its ticket and session carry over to the admission)."""
    data = _body()
    lane = str(data.get("lane", ""))
    why = " ".join(str(data.get("reason", "")).split())
    if not MIN_OVERRIDE_REASON <= len(why) <= MAX_OVERRIDE_REASON:
        return _bad(_("Say why the lane is opened (%(low)d to %(high)d characters).",
                      low=MIN_OVERRIDE_REASON, high=MAX_OVERRIDE_REASON))
    refused_id = data.get("entry_id") or None
    refused_id = None if refused_id is None else str(refused_id)
    conn = get_conn()
    now = utcnow()
    user = g.user.username
    try:
        with immediate(conn):
            done = entries.record_override(conn, lane, user, why, refused_id, now)
            command_id = commands.request_open(conn, done.lane_id, user,
                                               {"entry_id": done.entry_id, "why": "override"},
                                               now)
            audit.record(conn, user, "entry.override", f"lane:{lane}", {
                "entry_id": done.entry_id, "refused_entry_id": refused_id,
                "ticket_id": done.ticket_id, "reason": why, "command": command_id})
    except entries.OverrideRefused as e:
        if e.code == "unknown_entry":
            return _bad(_("That scan is not on this appliance."), 404)
        if e.code == "already_admitted":
            # admitting it twice would count the person twice (and raise a conflict at the
            # hub); a lane that did not open for an admitted scan is opened without a ticket
            return _bad(_("That scan was admitted already: open anyway without it."), 409)
        return _bad(_("Choose a lane first."))
    entry_id = done.entry_id
    log.warning("lane %s opened by override of %s", lane, g.user.username)
    return jsonify({"entry_id": entry_id, "command_id": command_id, "lane": lane,
                    "colour": "green", "words": _("Opened by override"),
                    "at": _local(conn, to_iso(now))}), 201


@bp.route("/feed.json")
def feed():
    """The newest entries of the chosen lanes (``?lane=N1&lane=N2&after=SEQ``), newest first,
    each with its lane's outcome; ``updates``: the entries named by ``?watch=ENTRY_ID`` (the
    admissions the screen shows while their passage is pending) as they are now; ``devices``:
    the chosen lanes' devices and their states."""
    conn = get_conn()
    lanes = [c for c in request.args.getlist("lane") if c][:12]
    watch = [w for w in request.args.getlist("watch") if w][:MAX_WATCH]
    after = query_int("after", 0, 0)
    lang = current_language()
    where = "e.seq > ?"
    args: list = [after]
    if lanes:
        where += f" AND l.code IN ({','.join('?' * len(lanes))})"
        args += lanes
    items = _feed_items(conn, f"{where} ORDER BY e.seq DESC LIMIT {FEED_LIMIT}", args, lang)
    updates = _feed_items(conn, f"e.id IN ({','.join('?' * len(watch))})", watch, lang) \
        if watch else []
    (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM entries").fetchone()
    return jsonify({"items": items, "last_seq": last, "updates": updates,
                    "devices": outcome.lane_devices(conn, lanes)})


def _feed_items(conn, where: str, args: list, lang: str) -> list[dict]:
    rows = conn.execute(
        f"""SELECT e.seq, e.id, e.at, l.code, e.direction, e.reason, e.detail, e.ticket_id,
                   t.number, z.name, t.seat, h.name_masked, h.doc_masked, e.scan_kind,
                   e.device_id, e.passage, e.admitted, e.staff, e.detail_code, e.detail_params
            FROM entries e LEFT JOIN lanes l ON l.id = e.lane_id
            LEFT JOIN tickets t ON t.id = e.ticket_id LEFT JOIN holders h ON h.id = t.holder_id
            LEFT JOIN zones z ON z.id = t.zone_id
            WHERE {where}""", args).fetchall()
    # an admission whose opening is asked of the runtime is pending until it is done
    opening = commands.pending_openings(conn, [r[1] for r in rows if r[15] is None
                                               and r[5] == Reason.OK.value])
    items = []
    for (seq, entry_id, at, lane, direction, reason, detail, ticket_id, number, zone, seat,
         name, doc, kind, device, passage, admitted, staff, detail_code, params) in rows:
        passage = "pending" if entry_id in opening else passage
        first = None
        if reason == Reason.ALREADY_ENTERED.value and ticket_id is not None:
            hit = conn.execute("SELECT at FROM entries WHERE ticket_id = ? AND admitted = 1 "
                               "AND direction = 'in' ORDER BY seq LIMIT 1",
                               (ticket_id,)).fetchone()
            first = _local(conn, hit[0]) if hit else None
        items.append({
            "seq": seq, "entry_id": entry_id, "at": _local(conn, at), "lane": lane,
            "direction": direction, "reason": reason,
            **outcome.shown(reason, passage, detail or "", lang, detail_code,
                            json.loads(params) if params else None), "ticket": number,
            "zone": zone, "seat": seat,
            "holder": {"name": name, "document": doc} if name else None,
            "first_entry_at": first, "override": detail.startswith("override by "),
            "source": device or kind,
            "by_number": kind == ScanKind.MANUAL and bool(admitted), "staff": staff,
        })
    return items
