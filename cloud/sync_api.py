"""The server side of the sync contract, under ``/api/sync/v1/``.

Every call but enroll carries ``Authorization: Appliance <credential>``; a revoked or unknown
credential gets 401 everywhere. Bad requests get a 4xx with ``{"error": code, "message": …}``
and change nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import abort, jsonify, make_response, request
from sqlalchemy.dialects import postgresql, sqlite

from cloud import appliances as appliance_mod
from cloud.changes import changes_since, last_seq
from cloud.compaction import compacted, horizon
from cloud.conflicts import check_entries
from cloud.db import change_log, entries
from cloud.http import ApiError, engine, json_blueprint, json_body
from cloud.ops import count_entries
from sync.timeutil import from_iso, to_iso, utcnow

bp = json_blueprint("sync_api", "/api/sync/v1")
MAX_PAGE = 5000
MAX_BATCH = 1000
ENTRY_FIELDS = {"id", "seq", "at", "lane", "direction", "ticket_id", "session_id", "admitted",
                "reason", "cursor", "kind", "staff"}


@bp.errorhandler(appliance_mod.ApplianceError)
def _appliance_error(e: appliance_mod.ApplianceError):
    status = 401 if e.code == "unauthorized" else 400
    return jsonify(error=e.code, message=str(e)), status


def _appliance(conn: sa.Connection) -> appliance_mod.Appliance:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Appliance" or not credential:
        raise appliance_mod.ApplianceError("unauthorized", "missing Authorization: Appliance "
                                           "<credential>")
    return appliance_mod.authenticate(conn, credential.strip())


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_argument", f"{name} must be a whole number") from None
    if not lo <= value <= hi:
        raise ApiError(400, "bad_argument", f"{name} must be between {lo} and {hi}")
    return value


@bp.post("/enroll")
def enroll():
    token = json_body().get("token")
    if not isinstance(token, str) or not token:
        raise ApiError(400, "bad_request", "token is required")
    with engine().begin() as conn:
        e = appliance_mod.enroll(conn, token)
    return jsonify(appliance_id=e.appliance_id, venue_id=e.venue_id, credential=e.credential,
                   keys=e.keys, server_time=to_iso(utcnow())), 201


def _check_horizon(conn: sa.Connection, since: int) -> int:
    """Refuse a cursor below the compaction horizon with 410 — unless it belongs to a full sync
    that started from 0 under this same horizon (``full=<horizon>``): nothing was compacted
    away under its feet. Returns the horizon."""
    h = horizon(conn)
    if since and since < h and request.args.get("full") != str(h):
        abort(make_response(jsonify(
            error="cursor_expired", horizon=h, message=f"cursor {since} is older than the "
            f"change log keeps (horizon {h}); sync again from cursor 0"), 410))
    return h


@bp.get("/allowlist")
def allowlist():
    since = _int_arg("since", 0, 0, 2**62)
    limit = _int_arg("limit", 1000, 1, MAX_PAGE)
    with engine().begin() as conn:
        a = _appliance(conn)
        h = _check_horizon(conn, since)
        top = last_seq(conn)
        page = changes_since(conn, a.venue_id, since, limit + 1, upto=top)
        more = len(page) > limit
        page = page[:limit]
        # caught up: the cursor moves to the newest seq of any venue, so a quiet venue's
        # cursor keeps up with the log (and stays above the compaction horizon)
        cursor = page[-1]["seq"] if more else max(top, since)
        body: dict[str, Any] = {"changes": page, "cursor": cursor, "more": more,
                                "horizon": h, "server_time": to_iso(utcnow())}
        if since == 0:
            # changes compaction dropped: an appliance starting from 0 counts them as received
            body["compacted"] = compacted(conn, a.venue_id)
        if request.args.get("progress") == "1":
            body["remaining"] = conn.execute(
                sa.select(sa.func.count()).select_from(change_log)
                .where(change_log.c.venue_id == a.venue_id, change_log.c.seq > cursor,
                       change_log.c.seq <= top)).scalar_one()
        if not more:
            # Caught up: how many changes this venue has had up to the cursor (compacted ones
            # included). An appliance that applied every page has counted as many; a
            # different count means a lost page, and the appliance resyncs.
            body["checksum"] = {"changes": conn.execute(
                sa.select(sa.func.count()).select_from(change_log)
                .where(change_log.c.venue_id == a.venue_id, change_log.c.seq <= cursor)
            ).scalar_one() + compacted(conn, a.venue_id)}
    return jsonify(body)


@bp.get("/revocations")
def revocations():
    since = _int_arg("since", 0, 0, 2**62)
    with engine().begin() as conn:
        a = _appliance(conn)
        h = _check_horizon(conn, since)
        top = last_seq(conn)
        page = changes_since(conn, a.venue_id, since, MAX_PAGE, upto=top)
    more = len(page) == MAX_PAGE
    cursor = page[-1]["seq"] if more else max(top, since)
    return jsonify(changes=[c for c in page if c["type"] == "revocation"], cursor=cursor,
                   more=more, horizon=h, server_time=to_iso(utcnow()))


def _check_entry(e: Any) -> dict[str, Any]:
    if not isinstance(e, dict):
        raise ApiError(400, "bad_entry", "each entry must be a JSON object")
    unknown = set(e) - ENTRY_FIELDS
    if unknown:
        raise ApiError(400, "bad_entry", f"unknown entry field {sorted(unknown)[0]!r}")
    try:
        at = from_iso(e["at"])
        out = {"id": str(e["id"]), "seq": int(e["seq"]), "at": at, "lane": e.get("lane"),
               "direction": e["direction"], "ticket_id": e.get("ticket_id"),
               "session_id": e.get("session_id"), "admitted": bool(e["admitted"]),
               "reason": str(e["reason"]), "cursor": int(e.get("cursor", 0)),
               "kind": e.get("kind"), "staff": e.get("staff")}
    except (KeyError, TypeError, ValueError) as err:
        raise ApiError(400, "bad_entry", f"entry {e.get('id')!r}: {err}") from None
    if out["direction"] not in ("in", "out") or len(out["id"]) != 36:
        raise ApiError(400, "bad_entry", f"entry {out['id']!r}: bad id or direction")
    return out


@bp.post("/entries")
def push_entries():
    batch = json_body().get("entries")
    if not isinstance(batch, list):
        raise ApiError(400, "bad_request", "entries must be a list")
    if len(batch) > MAX_BATCH:
        raise ApiError(413, "batch_too_large", f"at most {MAX_BATCH} entries per batch")
    checked = [_check_entry(e) for e in batch]  # the whole batch is checked before any write
    now: datetime = utcnow()
    with engine().begin() as conn:
        a = _appliance(conn)
        rows = [{**e, "appliance_id": a.id, "venue_id": a.venue_id, "received_at": now}
                for e in checked]
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
    return jsonify(stored=stored, duplicate=duplicate, conflict=conflicted, refused=[])


def _insert_ignoring_duplicates(conn: sa.Connection):
    if conn.dialect.name == "postgresql":
        return postgresql.insert(entries).on_conflict_do_nothing(index_elements=["id"])
    return sqlite.insert(entries).on_conflict_do_nothing(index_elements=["id"])


@bp.post("/heartbeat")
def heartbeat():
    body = json_body()
    reported = body.get("state", {})
    if not isinstance(reported, dict) or len(request.get_data()) > 256 * 1024:
        raise ApiError(400, "bad_request", "state must be a JSON object under 256 KiB")
    try:
        clock = from_iso(body["clock"]) if body.get("clock") else None
    except (TypeError, ValueError):
        raise ApiError(400, "bad_request", "clock must be an ISO 8601 time with an offset"
                       ) from None
    done = body.get("done", [])
    if (not isinstance(done, list) or len(done) > 1000
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in done)):
        raise ApiError(400, "bad_request", "done must be a list of command ids")
    with engine().begin() as conn:
        a = _appliance(conn)
        pending = appliance_mod.heartbeat(conn, a, reported, clock, done=done)
    # a command stays pending until the appliance lists its id in ``done``
    return jsonify(server_time=to_iso(utcnow()), commands=[c for _, c in pending],
                   command_ids=[i for i, _ in pending])


@bp.post("/roll")
def roll():
    chosen = (request.get_json(silent=True) or {}).get("credential")
    if chosen is not None and not isinstance(chosen, str):
        raise ApiError(400, "bad_request", "credential must be a string")
    with engine().begin() as conn:
        credential = appliance_mod.roll_credential(conn, _appliance(conn), chosen)
    return jsonify(credential=credential)
