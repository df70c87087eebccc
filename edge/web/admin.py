"""Admin pages: the dashboard, staff accounts and the audit log."""

from __future__ import annotations

import json
from pathlib import Path

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from edge import staff as staff_mod
from edge import status
from edge.web.auth import end_sessions, policy_message, require
from edge.web.context import get_conn
from edge.web.helpers import (
    device_detail_words,
    kind_name,
    local,
    refusal_words,
    state_name,
    stream_name,
)
from edge.web.query import query_int, query_text

bp = Blueprint("admin", __name__)


@bp.route("/")
def home():
    if g.user.may("supervisor"):
        return redirect(url_for("admin.dashboard"))
    return redirect(url_for("gate.screen"))


def _minutes() -> int:
    return query_int("minutes", 15, 1, 24 * 60)


def _dashboard() -> dict:
    """The dashboard's figures, with the words the screen shows for kinds, directions and
    states in the page's language."""
    data = status.dashboard(get_conn(), _minutes())
    for lane in data["lanes"]:
        lane["direction_name"] = _("in") if lane["direction"] == "in" else _("out")
    for device in data["devices"]:
        device["kind_name"] = kind_name(device["kind"])
        device["state_name"] = state_name(device["state"]) + (f" ({_('not reporting')})"
                                                              if device["silent"] else "")
        device["detail_words"], device["detail_lang"] = device_detail_words(device["detail"])
    for stream in data["sync"]["streams"]:
        stream["stream_name"] = stream_name(stream["stream"])
        stream["last_ok_local"] = local(stream["last_ok_at"]) or _("never")
    sync = data["sync"]
    sync["last_down_local"] = local(sync["last_down_at"]) or _("never")
    sync["last_up_local"] = local(sync["last_up_at"]) or _("never")
    for refused in sync["refused_by_reason"]:
        refused["words"] = refusal_words(refused["reason"])
    data["at_local"] = local(data["at"])
    return data


@bp.route("/dashboard")
@require("supervisor")
def dashboard():
    return render_template("dashboard.html", data=_dashboard(), certificate=_certificate())


def _certificate():
    """The pages' certificate, for staff to compare its fingerprint with what a browser or a
    handheld shows the first time (docs/handheld.md); None when there is none."""
    from edge import tls

    path = current_app.config.get("WEB_CERT")
    try:
        return tls.describe(Path(path)) if path else None
    except tls.TlsError:
        return None


@bp.route("/dashboard.json")
@require("supervisor")
def dashboard_json():
    return jsonify(_dashboard())


@bp.route("/staff", methods=["GET", "POST"])
@require("admin")
def staff():
    conn = get_conn()
    errors: list[str] = []
    if request.method == "POST":
        password = request.form.get("password", "")
        try:
            staff_mod.create_user(conn, request.form.get("username", "").strip(), password,
                                  request.form.get("role", ""), g.user.username,
                                  lang=request.form.get("lang") or None, must_change=True)
        except staff_mod.StaffError as e:
            errors.append(policy_message(e))
        else:
            flash(_("Account created: its holder chooses a new password at the first login."),
                  "ok")
            return redirect(url_for("admin.staff"))
    return render_template("staff.html", users=staff_mod.list_users(conn), roles=staff_mod.ROLES,
                           errors=errors), (400 if errors else 200)


@bp.route("/staff/<int:staff_id>", methods=["POST"])
@require("admin")
def staff_update(staff_id: int):
    conn = get_conn()
    action = request.form.get("action")
    try:
        if action == "role":
            staff_mod.update_user(conn, staff_id, g.user.username, role=request.form.get("role"))
        elif action in ("disable", "enable"):
            staff_mod.update_user(conn, staff_id, g.user.username, disabled=action == "disable")
            if action == "disable":
                end_sessions(conn, staff_id)
        elif action == "unlock":
            staff_mod.update_user(conn, staff_id, g.user.username, unlock=True)
        elif action == "password":
            staff_mod.set_password(conn, staff_id, request.form.get("password", ""),
                                   g.user.username)
            end_sessions(conn, staff_id)
        else:
            return render_template("error.html", status=400, message=_("Unknown action.")), 400
    except staff_mod.StaffError as e:
        flash(policy_message(e), "error")
        return redirect(url_for("admin.staff")), 303
    flash(_("Account updated."), "ok")
    return redirect(url_for("admin.staff")), 303


AUDIT_PAGE = 100


@bp.route("/audit")
@require("supervisor")
def audit():
    conn = get_conn()
    actor, action, subject, since, until = (query_text(name) for name in (
        "actor", "action", "subject", "since", "until"))
    before = query_int("before")
    where, args = [], []
    if actor:
        where.append("actor = ?")
        args.append(actor)
    if action:
        where.append("action LIKE ? ESCAPE '\\'")
        args.append(action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    if subject:
        where.append("subject = ?")
        args.append(subject)
    if since:
        where.append("at >= ?")
        args.append(since)
    if until:
        where.append("at < ?")
        args.append(until)
    if before:
        where.append("id < ?")
        args.append(before)
    sql = "SELECT id, at, actor, action, subject, detail FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = conn.execute(sql + f" ORDER BY id DESC LIMIT {AUDIT_PAGE + 1}", args).fetchall()
    more = len(rows) > AUDIT_PAGE
    rows = rows[:AUDIT_PAGE]
    entries = [{"id": r[0], "at": r[1], "actor": r[2], "action": r[3], "subject": r[4],
                "detail": json.loads(r[5]) if r[5] else {}} for r in rows]
    actions = [r[0] for r in conn.execute("SELECT DISTINCT action FROM audit_log ORDER BY action")]
    return render_template("audit.html", entries=entries, actions=actions, more=more,
                           filters={"actor": actor, "action": action, "subject": subject,
                                    "since": since, "until": until})
