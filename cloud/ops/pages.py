"""Central ops: the dashboard (attendance and the entry-rate chart), appliances and their
devices, conflicts with their review, alerts and their thresholds, wall-display links, and the
wall display itself.

Ops and admins open these pages; sales cannot. Every live page asks for its own live part
again every few seconds (``?part=live``, static/ops.js), and every such request first lets
the alert rules be evaluated (at most every few seconds across all viewers), so what is on
screen is never more than ``REFRESH_S`` plus a request old. ``/ops/export.csv`` gives what the
page shows as CSV.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import (
    Response,
    abort,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from markupsafe import Markup

from cloud.core.audit import record
from cloud.ops import alerts
from cloud.ops import attendance as ops
from cloud.ops import conflicts as ops_conflicts
from cloud.ops import devices as ops_devices
from cloud.ops.tables import display_links
from cloud.web.query import query_choice, query_int
from cloud.web.web import actor, back, engine, ok, page_blueprint, permission, public, refused
from cloud.web.words import rule_error
from sync.timeutil import from_iso, utcnow
from sync.websafe import CsvWriter

bp = page_blueprint("ops", "/ops")
wall_bp = page_blueprint("wall", "/wall")
REFRESH_S = 5
WALL_COOKIE = "wicket_wall"
WALL_MAX_AGE = 366 * 86400


# -- what a page shows ------------------------------------------------------------------------


def _selected(conn: sa.Connection) -> tuple[list[int], dict[str, Any]]:
    """The sessions asked for (?session=…, ?event=…), else the live ones."""
    chosen: dict[str, Any] = {"session": query_int("session"), "event": query_int("event")}
    if chosen["session"] is not None:
        chosen["event"] = None
        return [chosen["session"]], chosen
    if chosen["event"] is not None:
        return ops.event_sessions(conn, chosen["event"]), chosen
    return ops.live_sessions(conn), chosen


def _evaluate_alerts() -> None:
    with engine().begin() as conn:
        alerts.evaluate(conn)


def dashboard_data(conn: sa.Connection, session_ids: list[int],
                   now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    rules = alerts.get_rules(conn)
    status = ops_devices.appliance_status(conn, now,
                                  timedelta(minutes=rules["appliance_offline"].threshold))
    return {"attendance": ops.attendance(conn, session_ids, now),
            "appliances": {"total": sum(a["state"] == "active" for a in status),
                           "online": sum(a["online"] for a in status)},
            "gates": ops_devices.gates_online(conn, status, now),
            "alerts": alerts.open_alerts(conn),
            "conflicts": ops_conflicts.unreviewed_conflicts(conn)}


def rate_chart(series: list[dict[str, Any]], width: int = 720, height: int = 180) -> Markup:
    """Entries per minute as inline SVG bars (no script, no style attributes: the pages'
    content security policy allows neither inline)."""
    pad_l, pad_b, pad_t = 36, 20, 8
    n = max(len(series), 1)
    top = max([p["entries"] for p in series] + [1])
    bw = (width - pad_l) / n
    scale = (height - pad_b - pad_t) / top
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{Markup.escape(_("Entries per minute"))}" data-max="{top}" '
             f'data-points="{n}">',
             f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width}" y2="{height - pad_b}" '
             'stroke="#5d6872" stroke-width="1"/>',
             f'<text x="{pad_l - 4}" y="{pad_t + 10}" text-anchor="end" font-size="11" '
             f'fill="#5d6872">{top}</text>',
             f'<text x="{pad_l - 4}" y="{height - pad_b}" text-anchor="end" font-size="11" '
             'fill="#5d6872">0</text>']
    for i, p in enumerate(series):
        h = p["entries"] * scale
        x = pad_l + i * bw
        parts.append(f'<rect class="bar" x="{x + 1:.1f}" y="{height - pad_b - h:.1f}" '
                     f'width="{max(bw - 2, 1):.1f}" height="{h:.1f}" fill="#0b5cad" '
                     f'data-minute="{p["minute"]}" data-entries="{p["entries"]}">'
                     f'<title>{p["minute"][11:16]} UTC: {p["entries"]}</title></rect>')
    for i, anchor in ((0, "start"), (n // 2, "middle"), (n - 1, "end")):
        if series:
            x = pad_l + (i + (anchor == "end")) * bw if anchor != "middle" else \
                pad_l + i * bw + bw / 2
            parts.append(f'<text x="{x:.1f}" y="{height - 5}" text-anchor="{anchor}" '
                         f'font-size="11" fill="#5d6872">'
                         f'{_local_hhmm(series[i]["minute"])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _local_hhmm(iso_time: str) -> str:
    return from_iso(iso_time).astimezone(_display_zone()).strftime("%H:%M")


def _display_zone() -> ZoneInfo:
    """Ops watch many venues at once: their pages show one clock, OPS_TIMEZONE (default
    Asia/Shanghai)."""
    return ZoneInfo(current_app.config.get("OPS_TIMEZONE") or "Asia/Shanghai")


@bp.app_template_filter("ops_time")
def ops_time(value: str | None, seconds: bool = False) -> str:
    """An ISO time from the ops data, on the ops clock."""
    if not value:
        return "—"
    local = from_iso(value).astimezone(_display_zone())
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%m-%d %H:%M") + \
        " " + (local.tzname() or "")


@bp.app_template_filter("ops_age")
def ops_age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    if s < 120:
        return _("%(n)s s", n=s)
    if s < 7200:
        return _("%(n)s min", n=s // 60)
    return _("%(n)s h", n=s // 3600)


def _render(template: str, live: str, **ctx):
    """The whole page, or only its live part when the page's script asks for it."""
    if request.args.get("part") == "live":
        return render_template(live, **ctx)
    return render_template(template, live_template=live, refresh_s=REFRESH_S, **ctx)


QUERY_KEYS = ("session", "event", "show")  # the filters a page carries into its own links


def _query(**over) -> dict[str, Any]:
    """The page's filters for its links (each is parsed by the page before it renders; any
    other argument of the address is dropped, never passed on to ``url_for``)."""
    args = {k: request.args[k] for k in QUERY_KEYS if request.args.get(k)}
    args.update({k: v for k, v in over.items() if v is not None})
    return args


# -- dashboard --------------------------------------------------------------------------------


@bp.get("")
@permission("attendance.view")
def dashboard():
    _evaluate_alerts()
    with engine().connect() as conn:
        ids, chosen = _selected(conn)
        data = dashboard_data(conn, ids)
        choices = ops.session_choices(conn)
    return _render("ops/dashboard.html", "ops/_dashboard_live.html", data=data,
                   a=data["attendance"], chart=rate_chart(data["attendance"]["rate"]),
                   choices=choices, chosen=chosen, query=_query())


@bp.get("/data.json")
@permission("attendance.view")
def data_json():
    _evaluate_alerts()
    with engine().connect() as conn:
        ids, _chosen = _selected(conn)
        return jsonify(dashboard_data(conn, ids))


@bp.get("/appliances")
@permission("attendance.view")
def appliance_list():
    _evaluate_alerts()
    with engine().connect() as conn:
        rules = alerts.get_rules(conn)
        status = ops_devices.appliance_status(
            conn, offline_after=timedelta(minutes=rules["appliance_offline"].threshold))
        gates = ops_devices.gates_online(conn, status)
    return _render("ops/appliances.html", "ops/_appliances_live.html", appliances=status,
                   gates=gates, rules=rules, query=_query())


# -- conflicts --------------------------------------------------------------------------------


def _reviewed_filter() -> bool | None:
    return {"open": False, "reviewed": True}.get(_show())


def _show() -> str:
    return query_choice("show", ("open", "reviewed", "all"), "open")


@bp.get("/conflicts")
@permission("conflicts.resolve")
def conflict_list():
    with engine().connect() as conn:
        rows = ops_conflicts.conflict_list(conn, reviewed=_reviewed_filter())
    return _render("ops/conflicts.html", "ops/_conflicts_live.html", conflicts=rows,
                   show=_show(), query=_query())


@bp.post("/conflicts/<int:conflict_id>/review")
@permission("conflicts.resolve")
def review(conflict_id: int):
    try:
        with engine().begin() as conn:
            ops_conflicts.review_conflict(conn, conflict_id, request.form.get("note", ""), actor())
    except ops_conflicts.OpsError as e:
        refused(_("Not reviewed: %(reason)s", reason=rule_error(e)))
    else:
        ok(_("Conflict %(n)s marked reviewed.", n=conflict_id))
    return back("ops.conflict_list")


# -- alerts -----------------------------------------------------------------------------------


RULE_WORDS = {
    "appliance_offline": lambda: _("Appliance offline for more than N minutes"),
    "sync_lag": lambda: _("Sync lag (either way) above N seconds"),
    "clock_skew": lambda: _("Clock skew above N seconds"),
    "low_entry_rate": lambda: _("Entry rate at a gate below N per minute while gates are open"),
    "refused_ratio": lambda: _("Refused scans at a gate above N %"),
    "entries_refused": lambda: _("Entries of another venue (or unknown to the hub) reported "
                                 "by an appliance: more than N in the window"),
}


@bp.app_template_global("rule_words")
def rule_words(kind: str) -> str:
    return RULE_WORDS[kind]() if kind in RULE_WORDS else kind


@bp.get("/alerts")
@permission("alerts.manage")
def alert_list():
    _evaluate_alerts()
    with engine().connect() as conn:
        rules = alerts.get_rules(conn)
        recent = alerts.recent_alerts(conn)
        open_now = alerts.open_alerts(conn)
    return _render("ops/alerts.html", "ops/_alerts_live.html", rules=rules, recent=recent,
                   open_alerts=open_now, query=_query())


@bp.post("/alerts/rules")
@permission("alerts.manage")
def set_rules():
    try:
        with engine().begin() as conn:
            current = alerts.get_rules(conn)
            for kind in alerts.KINDS:
                threshold = request.form.get(f"{kind}.threshold", "").strip()
                window = request.form.get(f"{kind}.window_min", "").strip()
                enabled = request.form.get(f"{kind}.enabled") == "on"
                old = current[kind]
                if (threshold and float(threshold) == old.threshold and window
                        and int(window) == old.window_min and enabled == old.enabled):
                    continue
                alerts.set_rule(conn, kind, threshold or old.threshold, window or old.window_min,
                                enabled, actor())
    except alerts.AlertError as e:
        refused(_("Nothing was changed: %(reason)s",
                  reason=rule_error(e, kind=rule_words(e.params["kind"]))))
    except ValueError as e:
        refused(_("Nothing was changed: %(reason)s", reason=rule_error(e)))
    else:
        ok(_("Alert rules saved."))
    return back("ops.alert_list")


# -- CSV --------------------------------------------------------------------------------------


@bp.get("/export.csv")
@permission("attendance.view")
def export_csv():
    view = request.args.get("view", "dashboard")
    out = io.StringIO()
    w = CsvWriter(out, lineterminator="\n")
    with engine().connect() as conn:
        if view == "dashboard":
            ids, _chosen = _selected(conn)
            a = ops.attendance(conn, ids)
            w.writerow(["section", "event", "session", "venue", "zone", "gate", "lane", "sold",
                        "passes", "entered", "entries", "exits", "inside", "refused",
                        "rate_per_min"])
            for s in a["sessions"]:
                w.writerow(["session", s["event"], s["name"], s["venue"], "", "", "", s["sold"],
                            s["passes"], s["entered"], s["entries"], s["exits"], s["inside"],
                            s["refused"], s["rate"]])
            t = a["totals"]
            w.writerow(["total", "", "", "", "", "", "", t["sold"], t["passes"], t["entered"],
                        t["entries"], t["exits"], t["inside"], t["refused"], t["rate"]])
            for v in a["by_venue"]:
                w.writerow(["venue", "", "", v["venue"], "", "", "", "", "", v["entered"],
                            v["entries"], v["exits"], v["inside"], v["refused"], v["rate"]])
            for z in a["by_zone"]:
                w.writerow(["zone", "", "", z["venue"], z["zone"] or "", "", "", "", "",
                            z["entered"], z["entries"], z["exits"], z["inside"], z["refused"],
                            ""])
            for gt in a["by_gate"]:
                w.writerow(["gate", "", "", gt["venue"], "", gt["gate"] or "", gt["lane"] or "",
                            "", "", gt["entered"], gt["entries"], gt["exits"], "",
                            gt["refused"], gt["rate"]])
            for p in a["rate"]:
                w.writerow(["minute", "", "", "", "", "", p["minute"], "", "", "",
                            p["entries"], "", "", "", ""])
        elif view == "appliances":
            w.writerow(["appliance", "venue", "online", "heartbeat_age_s", "version",
                        "clock_skew_s", "queued", "refused", "lag_down_s", "lag_down_changes",
                        "lag_up_s", "device", "kind", "gate", "state", "last_scan_at",
                        "errors", "error"])
            for ap in ops_devices.appliance_status(conn, offline_after=timedelta(
                    minutes=alerts.get_rules(conn)["appliance_offline"].threshold)):
                base = [ap["name"], ap["venue"], ap["online"], ap["heartbeat_age_s"],
                        ap["version"], ap["clock_skew_s"], ap["queued"], ap["refused"],
                        ap["lag_down_s"], ap["lag_down_changes"], ap["lag_up_s"]]
                for d in ap["devices"] or [None]:
                    w.writerow(base + ([d["id"], d["kind"], d["gate"] or "", d["state"],
                                        d["last_scan_at"] or "", d["errors"], d["error"] or ""]
                                       if d else [""] * 7))
        elif view == "conflicts":
            w.writerow(["conflict", "kind", "ticket", "detected_at", "detail", "entry", "at",
                        "appliance", "lane", "direction", "reason", "cursor", "reviewed_at",
                        "reviewed_by", "note"])
            for c in ops_conflicts.conflict_list(conn, reviewed=_reviewed_filter(), limit=5000):
                for e in c["entries"] or [None]:
                    w.writerow([c["id"], c["kind"], c["ticket"]["number"] or c["ticket"]["id"],
                                c["detected_at"], c["detail"],
                                *([e["id"], e["at"], e["appliance"], e["lane"] or "",
                                   e["direction"], e["reason"], e["cursor"]] if e else [""] * 7),
                                c["reviewed_at"] or "", c["reviewed_by"] or "", c["note"] or ""])
        elif view == "alerts":
            w.writerow(["alert", "kind", "subject", "value", "threshold", "detail", "raised_at",
                        "cleared_at"])
            for al in alerts.recent_alerts(conn, limit=5000):
                w.writerow([al["id"], al["kind"], al["subject"], al["value"], al["threshold"],
                            al["detail"], al["raised_at"], al["cleared_at"] or ""])
        else:
            abort(404)
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="wicket-ops-{view}-{stamp}.csv"'})


# -- wall display -----------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@bp.get("/display")
@permission("displays.manage")
def display_links_page():
    with engine().connect() as conn:
        links = conn.execute(sa.select(display_links).order_by(display_links.c.id.desc())).all()
    return render_template("ops/display.html", links=links, new_url=None)


@bp.post("/display")
@permission("displays.manage")
def create_display_link():
    name = request.form.get("name", "").strip()[:80] or _("Wall display")
    token = secrets.token_urlsafe(32)
    with engine().begin() as conn:
        link_id = conn.execute(sa.insert(display_links).values(
            name=name, token_hash=_token_hash(token), created_by=actor(),
            created_at=utcnow())).inserted_primary_key[0]
        record(conn, actor(), "display_link.create", f"display_link:{link_id}", None,
               {"name": name})
        links = conn.execute(sa.select(display_links).order_by(display_links.c.id.desc())).all()
    url = url_for("wall.open_link", token=token, _external=True)
    return render_template("ops/display.html", links=links, new_url=url)


@bp.post("/display/<int:link_id>/revoke")
@permission("displays.manage")
def revoke_display_link(link_id: int):
    with engine().begin() as conn:
        done = conn.execute(sa.update(display_links).where(
            display_links.c.id == link_id, display_links.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())).rowcount
        if done:
            record(conn, actor(), "display_link.revoke", f"display_link:{link_id}",
                   {"revoked": False}, {"revoked": True})
    (ok if done else refused)(_("Display link revoked.") if done
                              else _("That link was revoked already."))
    return back("ops.display_links_page")


def _wall_link(conn: sa.Connection, token: str | None):
    if not token:
        return None
    return conn.execute(sa.select(display_links).where(
        display_links.c.token_hash == _token_hash(token),
        display_links.c.revoked_at.is_(None))).first()


@wall_bp.get("/open/<token>")
@public
def open_link(token: str):
    """The link an ops user made: kept by this browser as a cookie, so the address bar (and
    anyone reading it off the wall) no longer shows the token."""
    with engine().connect() as conn:
        link = _wall_link(conn, token)
    if link is None:
        return render_template("ops/wall_closed.html"), 403
    resp = make_response(redirect(url_for("wall.show"), 303))
    resp.set_cookie(WALL_COOKIE, token, max_age=WALL_MAX_AGE, httponly=True, samesite="Lax",
                    secure=request.is_secure, path="/wall")
    return resp


@wall_bp.get("")
@public
def show():
    token = request.cookies.get(WALL_COOKIE)
    with engine().begin() as conn:
        link = _wall_link(conn, token)
        if link is None:
            return render_template("ops/wall_closed.html"), 403
        now = utcnow()
        last = link.last_used_at
        if last is None or (now - (last if last.tzinfo else last.replace(tzinfo=UTC))
                            ) > timedelta(minutes=1):
            conn.execute(sa.update(display_links).where(display_links.c.id == link.id)
                         .values(last_used_at=now))
    _evaluate_alerts()
    with engine().connect() as conn:
        ids = ops.live_sessions(conn)
        data = dashboard_data(conn, ids)
    return _render("ops/wall.html", "ops/_wall_live.html", data=data, a=data["attendance"],
                   chart=rate_chart(data["attendance"]["rate"], width=960, height=220),
                   query={})
