"""Emergency pages: export entries as a signed file, import another appliance's export, and
load an allowlist file the hub signed from a USB stick when the network is gone for long (a
file not signed by a hub key this appliance already holds is refused). All audited."""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from edge import audit, emergency
from edge.allowlist import AllowlistError, import_file
from edge.web.auth import require
from edge.web.context import get_conn, web
from edge.web.helpers import export_file_error
from sync.timeutil import to_iso

log = logging.getLogger(__name__)
bp = Blueprint("emergency", __name__, url_prefix="/emergency")
USB_ROOTS = ["/media", "/run/media", "/mnt"]


def _roots() -> list[str]:
    return [r for r in current_app.config.get("USB_ROOTS", USB_ROOTS) if os.path.isdir(r)]


def _on_stick(path: str) -> Path | None:
    """``path`` if it names a file under one of the USB roots (never anywhere else)."""
    real = os.path.realpath(path)
    for root in _roots():
        root_real = os.path.realpath(root)
        if real.startswith(root_real + os.sep) and os.path.isfile(real):
            return Path(real)
    return None


@bp.route("/")
@require("admin")
def index():
    key = emergency.signing_key(current_app.config["HOLDER_KEY"])
    conn = get_conn()
    (total, unsent) = conn.execute("SELECT count(*), count(*) - count(acked_at) FROM entries"
                                   ).fetchone()
    return render_template("emergency.html",
                           fingerprint=emergency.fingerprint(key.public_key()),
                           files=list(emergency.iter_files(_roots())), roots=_roots(),
                           total=total, unsent=unsent)


@bp.route("/export", methods=["POST"])
@require("admin")
def export():
    since = request.form.get("since", "").strip() or None
    if since is not None:
        try:
            parsed = datetime.fromisoformat(since)
        except ValueError:
            flash(_("Give the time as 2026-07-01T08:00 (UTC), or leave it empty for all "
                    "entries."), "error")
            return redirect(url_for("emergency.index"), 303)
        since = to_iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    name, data = emergency.export_entries(get_conn(), current_app.config["HOLDER_KEY"],
                                          g.user.username, since)
    log.info("entries exported by %s: %s (%d bytes)", g.user.username, name, len(data))
    return Response(data, mimetype="application/x-ndjson",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _read_upload_or_stick() -> tuple[bytes | None, str]:
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        return upload.read(), f"upload:{os.path.basename(upload.filename)}"
    chosen = request.form.get("path", "")
    if chosen:
        path = _on_stick(chosen)
        if path is None:
            return None, chosen
        return path.read_bytes(), str(path)
    return None, ""


@bp.route("/import-entries", methods=["POST"])
@require("admin")
def import_entries():
    data, source = _read_upload_or_stick()
    if data is None:
        flash(_("Choose a file from the USB stick or upload one."), "error")
        return redirect(url_for("emergency.index"), 303)
    try:
        result = emergency.import_entries(get_conn(), current_app.config["HOLDER_KEY"], data,
                                          g.user.username,
                                          request.form.get("fingerprint", "").strip() or None,
                                          source)
    except emergency.ExportFileError as e:
        audit.record(get_conn(), g.user.username, "entries.import_refused", source,
                     {"error": str(e)})
        flash(_("Import refused: %(why)s", why=export_file_error(str(e))), "error")
        return redirect(url_for("emergency.index"), 303)
    flash(_("Imported %(added)d entries from appliance %(appliance)s (%(present)d were already "
            "here).", added=result.added, appliance=result.appliance, present=result.present),
          "ok")
    return redirect(url_for("emergency.index"), 303)


@bp.route("/import-allowlist", methods=["POST"])
@require("admin")
def import_allowlist():
    data, source = _read_upload_or_stick()
    if data is None:
        flash(_("Choose a file from the USB stick or upload one."), "error")
        return redirect(url_for("emergency.index"), 303)
    conn = get_conn()
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            result = import_file(conn, web().vault, Path(tmp.name),
                                 name=os.path.basename(source) or "file")
        except AllowlistError as e:
            message = str(e)
            audit.record(conn, g.user.username, "allowlist.import_refused", source,
                         {"error": message})
            flash(_("Import refused: %(why)s", why=message), "error")
            return redirect(url_for("emergency.index"), 303)
    audit.record(conn, g.user.username, "allowlist.import", source,
                 {"applied": result.applied, "unchanged": result.unchanged,
                  "cursor": result.cursor, "counts": result.counts,
                  "signed_by": result.signed_by, "exported_at": result.exported_at})
    flash(_("Allowlist imported: %(applied)d changes applied, %(unchanged)d already up to "
            "date.", applied=result.applied, unchanged=result.unchanged), "ok")
    return redirect(url_for("emergency.index"), 303)
