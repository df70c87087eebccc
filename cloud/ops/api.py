"""Central ops' JSON: the conflicts list of the staff API (``/api/v1/conflicts``), and the
sync contract's entries push (``/api/sync/v1/entries``), where the entries appliances report are
stored once, checked for conflicts and counted, in one transaction.

Entries naming another venue's ticket or session are refused one by one (answered in
``refused`` with their reason, never stored or counted) and raise the ``entries_refused``
alert.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import jsonify
from sqlalchemy.dialects import postgresql, sqlite

from cloud.fleet.api import MAX_BATCH, calling_appliance, read_record, sync_blueprint, sync_body
from cloud.fleet.tables import entries
from cloud.ops import alerts
from cloud.ops.attendance import count_entries
from cloud.ops.conflicts import check_entries, foreign_entries
from cloud.ops.tables import conflicts
from cloud.web.http import ApiError, api_blueprint, api_permission, engine
from sync import records
from sync.timeutil import to_iso, utcnow

bp = api_blueprint("ops_api")
sync_bp = sync_blueprint("sync_entries")


@bp.get("/conflicts")
@api_permission("conflicts.resolve")
def list_conflicts():
    with engine().connect() as conn:
        rows = conn.execute(sa.select(conflicts).order_by(conflicts.c.id.desc())
                            .limit(500)).all()
    return jsonify(conflicts=[{"id": r.id, "kind": r.kind, "ticket_id": r.ticket_id,
                               "entry_ids": r.entry_ids, "detail": r.detail,
                               "detected_at": to_iso(r.detected_at),
                               "reviewed": r.reviewed_at is not None} for r in rows])


@sync_bp.post("/entries")
def push_entries():
    calling_appliance()
    body = sync_body()
    batch = body.get("entries") if isinstance(body, dict) else None
    if isinstance(batch, list) and len(batch) > MAX_BATCH:
        raise ApiError("batch_too_large", limit=MAX_BATCH)
    now: datetime = utcnow()
    # the whole batch is checked before any write
    checked = [e.as_stored() for e in read_record(records.entries_from_wire, body, now)]
    with engine().begin() as conn:
        a = calling_appliance(conn)
        refused = foreign_entries(conn, a.venue_id, checked)
        columns = set(entries.c.keys())
        rows = [{**{k: v for k, v in e.items() if k in columns}, "appliance_id": a.id,
                 "venue_id": a.venue_id, "received_at": now}
                for e in checked if e["id"] not in refused]
        # stored once forever: a resend, or the same batch racing itself, inserts nothing
        new = set(conn.execute(_insert_ignoring_duplicates(conn).returning(entries.c.id), rows)
                  .scalars()) if rows else set()
        stored: list[str] = []
        duplicate: list[str] = []
        fresh: list[dict] = []
        for row in rows:
            if row["id"] in new:
                new.discard(row["id"])  # an id twice in one batch: the second is a duplicate
                stored.append(row["id"])
                fresh.append(row)
            else:
                duplicate.append(row["id"])
        conflicted = list(check_entries(conn, fresh, a.venue_id, now))
        # the ops counters move in the same transaction as the entries they count
        count_entries(conn, a.venue_id, fresh, stored)
        if refused:
            alerts.refused_entries(conn, a.id, a.venue_id, refused)
            alerts.evaluate(conn, now)
    return jsonify(stored=stored, duplicate=duplicate, conflict=conflicted,
                   refused=[{"id": i, "reason": r} for i, r in refused.items()])


def _insert_ignoring_duplicates(conn: sa.Connection):
    if conn.dialect.name == "postgresql":
        return postgresql.insert(entries).on_conflict_do_nothing(index_elements=["id"])
    return sqlite.insert(entries).on_conflict_do_nothing(index_elements=["id"])
