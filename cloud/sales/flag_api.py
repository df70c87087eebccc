"""The JSON API of risk flags, under ``/api/v1/`` (``buyers.flag``; every write takes an
``Idempotency-Key``):

- ``GET /flags?state=live|expired|lifted|all&blocks=buy|refunds|entry&target=holder|buyer
  &buyer=buyer:<id>`` — ``{"flags": [...]}``, newest first;
- ``POST /flags/find`` ``{"doc_type", "doc_number", "state"}`` — the flags of a holder's
  document (in the body: a document number is never put in a URL);
- ``POST /flags`` ``{"blocks", "reason", "holder": {"doc_type", "doc_number"} | "buyer":
  "buyer:<id>", "expires_at": ISO time with offset or null}`` — 201 with the flag;
- ``GET /flags/<id>``; ``POST /flags/<id>/lift`` ``{"reason"}``.

A holder is answered masked. A body of the wrong shape is a 400 naming the field; what the rules
refuse, their code and field (cloud/sales/flags.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import jsonify, request

from cloud.sales.flags import (
    BUYER,
    FLAG_BLOCKS,
    FLAG_STATES,
    FLAG_TARGETS,
    Flag,
    add_flag,
    get_flag,
    lift_flag,
    list_flags,
)
from cloud.web.http import ApiError, api_actor, api_blueprint, api_permission, engine, json_body
from cloud.web.idempotent import idempotent, transaction
from sync.timeutil import to_iso

bp = api_blueprint("flag_api")
PERMISSION = "buyers.flag"


def flag_json(f: Flag) -> dict[str, Any]:
    return {"id": f.id, "target": f.target, "blocks": f.blocks, "buyer": f.buyer,
            "holder": {"doc_type": f.doc_type, "doc_number": f.doc_masked}
            if f.target == "holder" else None,
            "reason": f.reason, "created_by": f.created_by, "created_at": to_iso(f.created_at),
            "expires_at": to_iso(f.expires_at) if f.expires_at else None, "state": f.state,
            "lifted_by": f.lifted_by, "lifted_at": to_iso(f.lifted_at) if f.lifted_at else None,
            "lift_reason": f.lift_reason, "venues": list(f.venues)}


def _text(body: dict, name: str, required: bool = True, limit: int = 1000) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ApiError("bad_request", field=name)
    return value


def _choice(value: str | None, name: str, choices: tuple[str, ...]) -> str | None:
    if value in (None, "", "all", "any"):
        return None
    if value not in choices:
        raise ApiError("bad_request", field=name)
    return value


def _expiry(body: dict) -> datetime | None:
    text = _text(body, "expires_at", required=False, limit=40)
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError("bad_request", field="expires_at") from None
    if when.tzinfo is None:
        raise ApiError("bad_request", field="expires_at")
    return when


def _holder(body: dict) -> tuple[str, str] | None:
    holder = body.get("holder")
    if holder is None:
        return None
    if not isinstance(holder, dict) or set(holder) - {"doc_type", "doc_number"}:
        raise ApiError("bad_request", field="holder")
    return (_text(holder, "doc_type", limit=40) or "",
            _text(holder, "doc_number", limit=80) or "")


@bp.get("/flags")
@api_permission(PERMISSION)
def index():
    args = request.args
    state = args.get("state", "live")
    if state not in (*FLAG_STATES, "all"):
        raise ApiError("bad_request", field="state")
    buyer = args.get("buyer") or None
    if buyer is not None and not BUYER.fullmatch(buyer):
        raise ApiError("bad_request", field="buyer")
    with engine().connect() as conn:
        rows = list_flags(conn, state=None if state == "all" else state,
                          blocks=_choice(args.get("blocks"), "blocks", FLAG_BLOCKS),
                          target=_choice(args.get("target"), "target", FLAG_TARGETS),
                          buyer=buyer)
    return jsonify({"flags": [flag_json(f) for f in rows]})


@bp.post("/flags/find")
@api_permission(PERMISSION)
def find():
    body = json_body()
    state = body.get("state", "all")
    if state not in (*FLAG_STATES, "all"):
        raise ApiError("bad_request", field="state")
    number = (_text(body, "doc_type", limit=40) or "", _text(body, "doc_number", limit=80) or "")
    with engine().connect() as conn:
        rows = list_flags(conn, state=None if state == "all" else state, number=number)
    return jsonify({"flags": [flag_json(f) for f in rows]})


@bp.post("/flags")
@api_permission(PERMISSION)
@idempotent
def create():
    body = json_body()
    blocks = _text(body, "blocks", limit=20)
    reason = _text(body, "reason")
    buyer = _text(body, "buyer", required=False, limit=80)
    holder, expires_at = _holder(body), _expiry(body)
    with transaction() as conn:
        flag_id = add_flag(conn, blocks=blocks, reason=reason, actor=api_actor(),
                           holder=holder, buyer=buyer, expires_at=expires_at)
        answer = flag_json(get_flag(conn, flag_id))
    return jsonify(answer), 201


@bp.get("/flags/<int:flag_id>")
@api_permission(PERMISSION)
def get(flag_id: int):
    with engine().connect() as conn:
        return jsonify(flag_json(get_flag(conn, flag_id)))


@bp.post("/flags/<int:flag_id>/lift")
@api_permission(PERMISSION)
@idempotent
def lift(flag_id: int):
    reason = _text(json_body(), "reason")
    with transaction() as conn:
        lift_flag(conn, flag_id, api_actor(), reason)
        answer = flag_json(get_flag(conn, flag_id))
    return jsonify(answer)
