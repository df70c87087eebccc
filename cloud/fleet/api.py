"""The server side of the sync contract, under ``/api/sync/v1/``.

Every call but enroll carries ``Authorization: Appliance <credential>``; a revoked or unknown
credential gets 401 everywhere. Every request is checked against its schema in
:mod:`sync.schemas` before a field is read: a bad one gets 400 with ``{"error": code, "field":
JSON pointer, "message": …}`` and changes nothing. Here: enrolling, pulling the allowlist and
revocations, the heartbeat and rolling the credential; the entries an appliance pushes are
received by central ops (``cloud/ops/api.py``) with the helpers below.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, jsonify, request

from cloud.core.changes import change_log, changes_since, last_seq, open_changes
from cloud.core.compaction import compacted, horizon
from cloud.core.errors import Code, HubError
from cloud.fleet import appliances as appliance_mod
from cloud.web.http import ApiError, engine, json_blueprint
from cloud.web.limits import limited
from sync import records, schemas
from sync.timeutil import to_iso, utcnow

MAX_PAGE = 5000
MAX_BATCH = schemas.MAX_BATCH
MAX_BODY = 4 * 1024 * 1024  # a full batch of entries is about 300 KiB
MAX_HEARTBEAT = 256 * 1024


def calling_appliance(conn: sa.Connection | None = None) -> appliance_mod.Appliance:
    """The calling appliance, or 401. Without ``conn``, a read-only look first: a revoked
    appliance hears 401 (and wipes) whatever it sent, and nobody unknown gets the body read."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Appliance" or not credential:
        raise appliance_mod.ApplianceError("unauthorized", "missing Authorization: Appliance "
                                           "<credential>")
    if conn is None:
        with engine().connect() as look:
            return appliance_mod.authenticate(look, credential.strip(), touch=False)
    return appliance_mod.authenticate(conn, credential.strip())


class SyncError(HubError):
    """A sync request refused before any rule: it does not match its schema (the message is
    the schema's own, ``field`` the JSON pointer to what is wrong), or it pulls from a cursor
    compaction has passed."""

    codes = {
        "bad_request": Code(400, "the request does not match its schema at %(field)s"),
        "bad_entry": Code(400, "an entry does not match its schema at %(field)s"),
        "bad_argument": Code(400, "a query argument is not valid at %(field)s"),
        "cursor_expired": Code(410, "cursor %(cursor)s is older than the change log keeps "
                                    "(horizon %(horizon)s); sync again from cursor 0"),
    }


def sync_blueprint(name: str) -> Blueprint:
    """A blueprint of the sync contract. Its refusals also carry their ``field`` (a bad
    request) or ``horizon`` (an expired cursor) at the top, where appliances read them."""
    bp = json_blueprint(name, "/api/sync/v1")

    @bp.errorhandler(SyncError)
    def _sync_error(e: SyncError):
        top = {k: e.params[k] for k in ("field", "horizon") if k in e.params}
        return jsonify({**e.as_json(), **top}), e.status

    return bp


bp = sync_blueprint("sync_api")


def check_request(kind: str, body: Any, code: str, now: datetime | None = None) -> Any:
    try:
        return schemas.check(kind, body, now)
    except schemas.Invalid as e:
        raise SyncError(code, str(e), field=e.field) from None


def read_record(parse: Callable[..., Any], *args: Any) -> Any:
    """A record of the contract read with its :mod:`sync.records` parser; a field that does
    not match the schema is refused with the parser's code, naming the field."""
    try:
        return parse(*args)
    except records.BadField as e:
        raise SyncError(e.code, str(e), field=e.field) from None


def sync_body(limit: int = MAX_BODY) -> Any:
    """The request's JSON, whatever it is (the schema judges it); too large is 413, not JSON
    (or nested past what the parser takes) is 400."""
    if (request.content_length or 0) > limit:
        raise ApiError("too_large", limit=limit)
    data = request.get_data(cache=True)
    if len(data) > limit:
        raise ApiError("too_large", limit=limit)
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise ApiError("bad_json") from None


def _pull_args() -> dict[str, Any]:
    args = schemas.query_args(request.args)
    check_request("pull", args, "bad_argument")
    return args


@bp.post("/enroll")
@limited("ENROLL_LIMIT")
def enroll():
    token = check_request("enroll", sync_body(), "bad_request")["token"]
    with engine().begin() as conn:
        e = appliance_mod.enroll(conn, token)
    return jsonify(appliance_id=e.appliance_id, venue_id=e.venue_id, credential=e.credential,
                   keys=e.keys, server_time=to_iso(utcnow())), 201


def _check_horizon(conn: sa.Connection, since: int, full: int | None) -> int:
    """Refuse a cursor below the compaction horizon with 410 — unless it belongs to a full sync
    that started from 0 under this same horizon (``full=<horizon>``): nothing was compacted
    away under its feet. Returns the horizon."""
    h = horizon(conn)
    if since and since < h and full != h:
        raise SyncError("cursor_expired", cursor=since, horizon=h)
    return h


@bp.get("/allowlist")
def allowlist():
    calling_appliance()
    args = _pull_args()
    since, limit = args.get("since", 0), args.get("limit", 1000)
    with engine().begin() as conn:
        a = calling_appliance(conn)
        h = _check_horizon(conn, since, args.get("full"))
        top = last_seq(conn, a.venue_id)
        page = changes_since(conn, a.venue_id, since, limit + 1, upto=top)
        more = len(page) > limit
        page = page[:limit]
        # the log keeps holders sealed; this appliance, authenticated, gets them as today
        body_changes = open_changes(conn, page)
        # caught up: the cursor moves to the newest seq of any venue, so a quiet venue's
        # cursor keeps up with the log (and stays above the compaction horizon)
        cursor = page[-1]["seq"] if more else max(top, since)
        body: dict[str, Any] = {"changes": body_changes, "cursor": cursor, "more": more,
                                "horizon": h, "server_time": to_iso(utcnow())}
        if since == 0:
            # changes compaction dropped: an appliance starting from 0 counts them as received
            body["compacted"] = compacted(conn, a.venue_id)
        if args.get("progress") == 1:
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
    calling_appliance()
    args = _pull_args()
    since = args.get("since", 0)
    with engine().begin() as conn:
        a = calling_appliance(conn)
        h = _check_horizon(conn, since, args.get("full"))
        top = last_seq(conn, a.venue_id)
        page = changes_since(conn, a.venue_id, since, MAX_PAGE, upto=top)
    more = len(page) == MAX_PAGE
    cursor = page[-1]["seq"] if more else max(top, since)
    return jsonify(changes=[c for c in page if c["type"] == "revocation"], cursor=cursor,
                   more=more, horizon=h, server_time=to_iso(utcnow()))


@bp.post("/heartbeat")
def heartbeat():
    calling_appliance()
    report = read_record(records.Heartbeat.from_wire, sync_body(MAX_HEARTBEAT))
    reported, clock, done = report.state.to_wire(), report.clock_time(), list(report.done)
    with engine().begin() as conn:
        a = calling_appliance(conn)
        pending = appliance_mod.heartbeat(conn, a, reported, clock, done=done)
    # a command stays pending until the appliance lists its id in ``done``
    return jsonify(server_time=to_iso(utcnow()), commands=[c for _, c in pending],
                   command_ids=[i for i, _ in pending])


@bp.post("/roll")
def roll():
    calling_appliance()
    # no body at all asks the hub to choose
    chosen = check_request("roll", sync_body() if request.get_data() else {}, "bad_request"
                    ).get("credential")
    with engine().begin() as conn:
        credential = appliance_mod.roll_credential(conn, calling_appliance(conn), chosen)
    return jsonify(credential=credential)
