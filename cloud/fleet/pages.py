"""Appliances: per venue, with the age of the last heartbeat, what it reported and its clock
skew. Admins register one (its one-time enrollment token shown once, as text and as a QR code
a field tech's terminal reads), rename it, queue commands and revoke it; ops and sales read.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Response, abort, current_app, render_template, request
from flask_babel import gettext as _

from cloud.catalog.tables import venues
from cloud.catalog.venue_pages import all_venues, venue_or_404
from cloud.core.trust import signing_keys
from cloud.fleet import appliances as appliance_mod
from cloud.fleet.allowlist_export import ExportError, export_allowlist
from cloud.fleet.report import read_report
from cloud.fleet.tables import appliance_commands, appliances
from cloud.web.query import query_int
from cloud.web.web import actor, back, engine, ok, page_blueprint, permission, qr_svg, refused, utc
from sync.timeutil import to_iso, utcnow

bp = page_blueprint("appliances", "/appliances")
# a venue's signed allowlist file, for an appliance without the network
allowlist_bp = page_blueprint("allowlist", "/venues")
SKEW_WARN_MS = 2000
STALE_AFTER_S = 300


def enrollment_payload(hub_url: str, token: str) -> str:
    """What the enrollment QR code carries: the hub's address and the one-time token, as
    compact JSON (``{"v":1,"hub":"https://…/","token":"…"}``)."""
    return json.dumps({"v": 1, "hub": hub_url, "token": token}, separators=(",", ":"))


def hub_url() -> str:
    return current_app.config.get("HUB_PUBLIC_URL") or request.host_url


def _summary(reported) -> str:
    """A short line, in the page's language, from what the appliance last reported (what it
    reported in full is on the ops pages)."""
    if not isinstance(reported, dict) or not reported:
        return ""
    rep = read_report(reported)
    parts = []
    if rep.version:
        parts.append(_("version %(version)s", version=rep.version))
    if rep.devices:
        parts.append(_("devices up: %(up)d of %(n)d", n=len(rep.devices),
                       up=sum(d.state == "up" for d in rep.devices)))
    if rep.allowlist_cursor is not None:
        parts.append(_("allowlist at %(n)d", n=rep.allowlist_cursor))
    if rep.queued is not None:
        parts.append(_("entries not sent: %(n)d", n=rep.queued))
    if rep.refused:
        parts.append(_("entries refused by the hub: %(n)d", n=rep.refused))
    return _("; ").join(parts)


def _stale(a) -> bool:
    """An enrolled appliance that has not been heard from for STALE_AFTER_S."""
    return a.state == "active" and (
        a.last_seen_at is None
        or (utcnow() - utc(a.last_seen_at)).total_seconds() > STALE_AFTER_S)


def _list(status: int = 200, **extra):
    venue_filter = query_int("venue")
    with engine().connect() as conn:
        pending = (sa.select(sa.func.count()).select_from(appliance_commands)
                   .where(appliance_commands.c.appliance_id == appliances.c.id,
                          appliance_commands.c.delivered_at.is_(None))
                   .scalar_subquery())
        q = (sa.select(appliances, venues.c.code.label("venue_code"),
                       venues.c.name.label("venue_name"), venues.c.timezone,
                       pending.label("pending"))
             .join(venues, venues.c.id == appliances.c.venue_id)
             .order_by(venues.c.code, appliances.c.name, appliances.c.id))
        if venue_filter:
            q = q.where(appliances.c.venue_id == venue_filter)
        rows = conn.execute(q).all()
        venue_rows = all_venues(conn)
    return render_template("fleet/index.html", appliances=rows, venues=venue_rows,
                           venue_filter=venue_filter, summary=_summary, is_stale=_stale,
                           skew_warn=SKEW_WARN_MS, **extra), status


@bp.get("")
@permission("appliances.view")
def index():
    return _list()


@bp.post("")
@permission("appliances.manage")
def register():
    name = request.form.get("name", "").strip()
    venue_id = request.form.get("venue_id", type=int)
    if not name or len(name) > 200:
        refused(_("An appliance needs a name of up to 200 characters."))
        return _list(422)
    with engine().begin() as conn:
        venue = conn.execute(sa.select(venues).where(venues.c.id == venue_id)).first() \
            if venue_id else None
        if venue is None:
            refused(_("Choose a venue."))
            return _list(422)
        reg = appliance_mod.register(conn, venue.id, name, actor=actor())
    payload = enrollment_payload(hub_url(), reg.token)
    # the token is in this response only: not in a URL, not kept by the hub, not cached
    return render_template("fleet/token.html", name=name, venue=venue, token=reg.token,
                           expires_at=reg.expires_at, payload=payload, qr=qr_svg(payload),
                           expires_iso=to_iso(reg.expires_at))


def _appliance_or_404(conn: sa.Connection, appliance_id: int):
    a = conn.execute(sa.select(appliances, venues.c.name.label("venue_name"),
                               venues.c.timezone)
                     .join(venues, venues.c.id == appliances.c.venue_id)
                     .where(appliances.c.id == appliance_id)).first()
    if a is None:
        abort(404)
    return a


@bp.post("/<int:appliance_id>/name")
@permission("appliances.manage")
def rename(appliance_id: int):
    name = request.form.get("name", "").strip()
    if not name or len(name) > 200:
        refused(_("An appliance needs a name of up to 200 characters."))
        return back("appliances.index")
    with engine().begin() as conn:
        _appliance_or_404(conn, appliance_id)
        appliance_mod.rename(conn, appliance_id, name, actor=actor())
    ok(_("Appliance renamed to %(name)s.", name=name))
    return back("appliances.index")


@bp.get("/<int:appliance_id>/<any(revoke, wipe):action>")
@permission("appliances.manage")
def confirm(appliance_id: int, action: str):
    with engine().connect() as conn:
        a = _appliance_or_404(conn, appliance_id)
    return render_template("fleet/confirm.html", a=a, action=action)


@bp.post("/<int:appliance_id>/commands")
@permission("appliances.manage")
def command(appliance_id: int):
    cmd = request.form.get("command", "")
    if cmd not in appliance_mod.COMMANDS:
        abort(400)
    with engine().begin() as conn:
        a = _appliance_or_404(conn, appliance_id)
        if a.state != "active":
            refused(_("Only an enrolled, active appliance takes commands."))
            return back("appliances.index")
        appliance_mod.queue_command(conn, appliance_id, cmd, actor=actor())
    ok(_("Command queued for %(name)s: it is handed over at its next heartbeat.", name=a.name))
    return back("appliances.index")


@bp.post("/<int:appliance_id>/revoke")
@permission("appliances.manage")
def revoke(appliance_id: int):
    with engine().begin() as conn:
        a = _appliance_or_404(conn, appliance_id)
        if a.state != "revoked":
            appliance_mod.revoke(conn, appliance_id, actor=actor())
    ok(_("%(name)s is revoked: every call it makes is refused, and it wipes its personal data.",
         name=a.name))
    return back("appliances.index")


@allowlist_bp.get("/<int:venue_id>/allowlist")
@permission("appliances.manage")
def confirm_export_allowlist(venue_id: int):
    with engine().connect() as conn:
        v = venue_or_404(conn, venue_id)
        key_id = conn.execute(sa.select(signing_keys.c.key_id)
                              .where(signing_keys.c.state == "active")).scalar()
    return render_template("fleet/export_allowlist.html", venue=v, key_id=key_id)


@allowlist_bp.post("/<int:venue_id>/allowlist")
@permission("appliances.manage")
def export_allowlist_file(venue_id: int):
    """The signed file, for an appliance without the network: audited, admins only (it carries
    holder data as the sync does)."""
    try:
        with engine().begin() as conn:
            venue_or_404(conn, venue_id)
            export = export_allowlist(conn, venue_id, actor())
    except ExportError:  # the venue exists: what can fail is the key
        refused(_("There is no active signing key: create one and activate it on the Keys "
                  "page first."))
        return back("allowlist.confirm_export_allowlist", venue_id=venue_id)
    return Response(export.data, mimetype="application/x-ndjson",
                    headers={"Content-Disposition": f'attachment; filename="{export.name}"',
                             "Cache-Control": "no-store"})
