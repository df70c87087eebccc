"""The staff tools' JSON API of the presale lottery, under ``/api/v1/presales``
(docs/openapi.json): set a presale up (its lots), open it, freeze it after its deadline, enter
the seed (two different staff accounts, each with its own token), run the draw or import an
external one's result, refund the losers (a worker's job, with its progress), assign the seats
left when the choosing window is closed, and read the presale, its frozen list and its result.

``presale.manage`` sets up, freezes, refunds and assigns; ``presale.draw`` enters the seed and
runs or imports the draw. Every write takes an ``Idempotency-Key``; a body that does not match
its schema is a 400 naming the field, a value the rules refuse the 4xx of its code, also
naming the field (cloud/lottery/errors.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jsonschema
import sqlalchemy as sa
from flask import Response, jsonify, request

from cloud.core.jobs import enqueue
from cloud.lottery import choosing, drawing, freezing, presales, refunding
from cloud.lottery.errors import LotteryError
from cloud.lottery.tables import presales as presale_table
from cloud.lottery.views import lot_counts
from cloud.web.http import ApiError, api_actor, api_blueprint, api_permission, engine, json_body
from cloud.web.idempotent import idempotent, transaction

bp = api_blueprint("presale_api")
MANAGE, DRAW = "presale.manage", "presale.draw"
MAX_RESULT = 64 * 1024 * 1024

_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_WHEN = {"type": "string", "minLength": 1, "maxLength": 40}
PRESALE_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["event_id", "name", "opens_at", "closes_at"],
    "properties": {
        "event_id": _ID, "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "opens_at": _WHEN, "closes_at": _WHEN, "real_name": {"type": "boolean"},
        "max_quantity": {"type": "integer", "minimum": 1, "maximum": 10},
        "buyer_limit": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000},
        "channels": {"type": "array", "minItems": 1, "maxItems": len(presales.CHANNELS),
                     "items": {"enum": list(presales.CHANNELS)}},
        "payment_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
    },
}
LOT_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["session_id", "price_tier_id", "tickets"],
    "properties": {"session_id": _ID, "price_tier_id": _ID,
                   "tickets": {"type": "integer", "minimum": 1, "maximum": 1_000_000}},
}
SEED_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["seed"],
               "properties": {"seed": {"type": "string", "minLength": 1, "maxLength": 200}}}
DRAW_SCHEMA = {"type": "object", "additionalProperties": False,
               "required": ["choose_closes_at"], "properties": {"choose_closes_at": _WHEN}}
EMPTY_SCHEMA = {"type": "object", "additionalProperties": False, "properties": {}}


def checked(schema: dict[str, Any], body: Any) -> dict[str, Any]:
    """The body, or a 400 naming the first field that does not match ``schema``."""
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(body))
    if error is not None:
        path = [str(p) for p in error.absolute_path]
        if error.validator in ("required", "additionalProperties"):
            path.append(error.message.split("'")[1])
        raise ApiError("bad_request", field=".".join(path) or "body")
    return body


def when(value: str, field: str) -> datetime:
    """An ISO 8601 time with its offset (a time without one is refused: whose clock?)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ApiError("bad_request", field=field)
    return parsed


def _at(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def presale_json(conn: sa.Connection, presale_id: int) -> dict[str, Any]:
    p = presales.presale(conn, presale_id)
    return {"id": p.id, "event_id": p.event_id, "name": p.name, "state": p.state,
            "opens_at": _at(p.opens_at), "closes_at": _at(p.closes_at),
            "choose_closes_at": _at(p.choose_closes_at), "real_name": p.real_name,
            "max_quantity": p.max_quantity, "buyer_limit": p.buyer_limit,
            "channels": list(p.channels), "payment_minutes": p.payment_minutes,
            "frozen_at": _at(p.frozen_at), "list_sha256": p.list_sha256,
            "seed_fixed": p.seed is not None, "seed_waiting": p.seed_first_by is not None,
            "result_source": p.result_source, "result_sha256": p.result_sha256,
            "drawn_at": _at(p.drawn_at), "assigned_at": _at(p.assigned_at),
            "lots": [{"id": x.id, "session_id": x.session_id, "price_tier_id": x.price_tier_id,
                      "tickets": x.tickets, "session": x.session, "tier": x.tier,
                      "amount": x.amount, "currency": x.currency}
                     for x in presales.lots(conn, presale_id)],
            "lot_counts": lot_counts(conn, presale_id)}


@bp.post("/presales")
@api_permission(MANAGE)
@idempotent
def create():
    """A draft presale of an event (201)."""
    b = checked(PRESALE_SCHEMA, json_body())
    opens, closes = when(b["opens_at"], "opens_at"), when(b["closes_at"], "closes_at")
    extra = {k: b[k] for k in ("real_name", "max_quantity", "buyer_limit", "payment_minutes")
             if k in b}
    if "channels" in b:
        extra["channels"] = tuple(b["channels"])
    with transaction() as conn:
        pid = presales.create_presale(conn, event_id=b["event_id"], name=b["name"],
                                      opens_at=opens, closes_at=closes, actor=api_actor(),
                                      **extra)
        body = presale_json(conn, pid)
    return jsonify(body), 201


@bp.post("/presales/<int:presale_id>/lots")
@api_permission(MANAGE)
@idempotent
def add_lot(presale_id: int):
    """Offer a session × price tier with its tickets in the draw (201)."""
    b = checked(LOT_SCHEMA, json_body())
    with transaction() as conn:
        lot_id = presales.add_lot(conn, presale_id, b["session_id"], b["price_tier_id"],
                                  b["tickets"], api_actor())
        body = presale_json(conn, presale_id)
    return jsonify({"lot_id": lot_id, "presale": body}), 201


def _step(presale_id: int, work) -> Response:
    """A state change of the presale with no body (or an empty one): the presale after it."""
    if request.get_data(cache=True).strip():
        checked(EMPTY_SCHEMA, json_body())
    with transaction() as conn:
        extra = work(conn) or {}
        body = presale_json(conn, presale_id)
    return jsonify({**extra, "presale": body})


@bp.post("/presales/<int:presale_id>/open")
@api_permission(MANAGE)
@idempotent
def open_(presale_id: int):
    return _step(presale_id, lambda conn: presales.open_presale(conn, presale_id, api_actor()))


@bp.post("/presales/<int:presale_id>/freeze")
@api_permission(MANAGE)
@idempotent
def freeze(presale_id: int):
    """Freeze the applications after the deadline: the canonical list's SHA-256."""
    return _step(presale_id, lambda conn: {
        "list_sha256": freezing.freeze(conn, presale_id, api_actor())})


@bp.post("/presales/<int:presale_id>/seed")
@api_permission(DRAW)
@idempotent
def seed(presale_id: int):
    """One of the two entries of the seed, by the token's staff member: ``first``, ``fixed``
    (a second person entered the same) or ``mismatch`` (both enter it again)."""
    b = checked(SEED_SCHEMA, json_body())
    with transaction() as conn:
        outcome = freezing.enter_seed(conn, presale_id, api_actor(), b["seed"])
    return jsonify({"seed": outcome})


@bp.post("/presales/<int:presale_id>/draw")
@api_permission(DRAW)
@idempotent
def draw(presale_id: int):
    """Draw with the fixed seed; winners may choose seats until ``choose_closes_at``."""
    b = checked(DRAW_SCHEMA, json_body())
    closes = when(b["choose_closes_at"], "choose_closes_at")
    with transaction() as conn:
        digest = drawing.run_draw(conn, presale_id, api_actor(), closes)
        body = presale_json(conn, presale_id)
    return jsonify({"result_sha256": digest, "presale": body})


@bp.post("/presales/<int:presale_id>/result")
@api_permission(DRAW)
@idempotent
def import_result(presale_id: int):
    """The result file of an external notarised draw as the body (text), the choosing
    window's end as ``?choose_closes_at=``; accepted once checked against the frozen list."""
    closes = request.args.get("choose_closes_at")
    if closes is None:
        raise ApiError("bad_request", field="choose_closes_at")
    closes_at = when(closes, "choose_closes_at")
    if (request.content_length or 0) > MAX_RESULT:
        raise ApiError("too_large", limit=MAX_RESULT)
    text = request.get_data(cache=True)
    if not text:
        raise ApiError("bad_request", field="result")
    with transaction() as conn:
        digest = drawing.import_result(conn, presale_id, api_actor(), text, closes_at)
        body = presale_json(conn, presale_id)
    return jsonify({"result_sha256": digest, "presale": body})


@bp.post("/presales/<int:presale_id>/refunds")
@api_permission(MANAGE)
@idempotent
def start_refunds(presale_id: int):
    """Refund the losers, batch after batch, in a worker (202): the progress as it stands."""
    with transaction() as conn:
        p = presales.presale(conn, presale_id)
        if p.state not in ("drawn", "assigned"):
            raise LotteryError("presale_state", state=p.state, action="refunds",
                               needs="drawn", field="presale_id")
        job = enqueue(conn, refunding.REFUND_JOB, {"presale_id": presale_id})
        shown = refunding.progress(conn, presale_id)
    return jsonify({"job": job, "progress": shown}), 202


@bp.get("/presales/<int:presale_id>/refunds")
@api_permission(MANAGE)
def refund_progress(presale_id: int):
    """Waiting to be asked, asked, confirmed by the provider (``refunded``), and the total."""
    with engine().connect() as conn:
        presales.presale(conn, presale_id)
        return jsonify(refunding.progress(conn, presale_id))


@bp.post("/presales/<int:presale_id>/assign")
@api_permission(MANAGE)
@idempotent
def assign(presale_id: int):
    """Close the choosing window now and seat every winner still without seats."""
    def work(conn):
        done = choosing.assign_rest(conn, presale_id, api_actor(), close_now=True)
        return {"seated": done.seated, "released": done.released}
    return _step(presale_id, work)


@bp.get("/presales/<int:presale_id>")
@api_permission(MANAGE)
def get(presale_id: int):
    with engine().connect() as conn:
        return jsonify(presale_json(conn, presale_id))


def _file(presale_id: int, column: str, name: str, needs: str) -> Response:
    with engine().connect() as conn:
        p = presales.presale(conn, presale_id)
        data = conn.execute(sa.select(presale_table.c[column]).where(
            presale_table.c.id == presale_id)).scalar()
    if data is None:
        raise LotteryError("presale_state", state=p.state, action=f"the {name} file",
                           needs=needs, field="presale_id")
    return Response(bytes(data), mimetype="text/plain", headers={
        "Content-Disposition": f"attachment; filename=presale-{presale_id}-{name}.txt"})


@bp.get("/presales/<int:presale_id>/list")
@api_permission(MANAGE)
def list_file(presale_id: int):
    """The frozen canonical list, byte for byte as hashed."""
    return _file(presale_id, "list_file", "list", "frozen")


@bp.get("/presales/<int:presale_id>/result")
@api_permission(MANAGE)
def result_file(presale_id: int):
    """The accepted result, byte for byte as hashed."""
    return _file(presale_id, "result_file", "result", "drawn")
