"""The audit log page, admins only: who did what, to what, when and from where, newest first;
filtered by actor (a username or ``staff:<id>``), action (``staff.`` for every staff action),
subject and a time range in UTC; a page at a time, or all that match as a CSV file.

Query arguments are read through :mod:`cloud.web.query`: a bad one is a 400 naming it.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import sqlalchemy as sa
from flask import Response, render_template, request, url_for

from cloud.core.audit import find_audit
from cloud.staff.tables import staff
from cloud.web.query import query_choice, query_int, query_text, query_time
from cloud.web.web import engine, page_blueprint, permission
from sync.timeutil import utcnow
from sync.websafe import CsvWriter

bp = page_blueprint("audit", "/audit")
PAGE = 50
CSV_LIMIT = 100_000
FILTERS = ("actor", "action", "subject", "since", "until")


def _actor(conn: sa.Connection, text: str) -> str:
    """A username as the actor it is recorded under (``staff:<id>``); anything else as is."""
    if not text or ":" in text:
        return text
    found = conn.execute(sa.select(staff.c.id).where(staff.c.username == text)).scalar()
    return f"staff:{found}" if found is not None else text


def _filters(conn: sa.Connection) -> dict:
    since, until = query_time("since"), query_time("until")
    if until is not None and len(request.args.get("until", "").strip()) == 10:
        until += timedelta(days=1)  # a date alone: up to the end of that day
    return {"actor": _actor(conn, query_text("actor", 80)),
            "action": query_text("action", 80), "subject": query_text("subject", 200),
            "since": since, "until": until}


def _json(value) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _csv(conn: sa.Connection, filters: dict) -> Response:
    out = io.StringIO()
    w = CsvWriter(out)
    w.writerow(["id", "at", "actor", "action", "subject", "source", "before", "after"])
    for r in find_audit(conn, **filters, limit=CSV_LIMIT):
        w.writerow([r.id, r.at.isoformat(), r.actor, r.action, r.subject, r.source or "",
                    _json(r.before), _json(r.after)])
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="wicket-audit-{stamp}.csv"'})


@bp.get("")
@permission("audit.view")
def index():
    page = query_int("page", 1, hi=100_000)
    fmt = query_choice("format", ("html", "csv"), "html")
    with engine().connect() as conn:
        filters = _filters(conn)
        if fmt == "csv":
            return _csv(conn, filters)
        rows = find_audit(conn, **filters, limit=PAGE + 1, offset=(page - 1) * PAGE)
    args = {k: request.args[k] for k in FILTERS if request.args.get(k, "").strip()}
    return render_template(
        "audit/index.html", rows=rows[:PAGE], page=page, args=args, json=_json,
        newer=url_for("audit.index", **args, page=page - 1) if page > 1 else None,
        older=url_for("audit.index", **args, page=page + 1) if len(rows) > PAGE else None,
        csv=url_for("audit.index", **args, format="csv"))
