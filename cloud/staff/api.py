"""The staff accounts' JSON API (admins' tokens only), the same rules as the pages: list the
accounts with their last sign-in, disable and enable, change the role, reset the password (the
temporary one in the answer, once), end all sessions, and create, list and revoke API tokens.
Refusals are ``{"error": code, ...}`` with the status the code names.

The writes take an ``Idempotency-Key`` (``cloud/web/idempotent.py``) — except the two whose
answer is a secret shown once (a temporary password, a new token): the hub keeps secrets only
hashed, and a stored answer would keep that one in clear for a day."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import jsonify

from cloud.staff import accounts, tokens
from cloud.staff.tables import staff
from cloud.web.http import ApiError, api_actor, api_permission, engine, json_blueprint, json_body
from cloud.web.idempotent import idempotent, transaction

bp = json_blueprint("staff_api", "/api/v1")
# limited as the rest of the staff tools' API (its own blueprint only so that its refusals keep
# their statuses: api_blueprint answers every StaffError 401)
bp.wicket_limit = ("API_LIMIT", None)


def _at(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


@bp.get("/staff")
@api_permission("staff.manage")
def list_staff():
    with engine().connect() as conn:
        rows = conn.execute(sa.select(staff).order_by(staff.c.username)).all()
    return jsonify({"staff": [
        {"id": r.id, "username": r.username, "role": r.role, "disabled": r.disabled,
         "must_change": r.password_changed_at is None, "last_sign_in_at": _at(r.last_sign_in_at),
         "last_sign_in_from": r.last_sign_in_from, "created_at": _at(r.created_at)}
        for r in rows]})


def _change(step, **answer):
    with transaction() as conn:
        changed = step(conn)
    return jsonify({**answer, "changed": changed})


@bp.post("/staff/<int:staff_id>/disable")
@api_permission("staff.manage")
@idempotent
def disable(staff_id: int):
    return _change(lambda c: accounts.disable_staff(c, staff_id, actor=api_actor()))


@bp.post("/staff/<int:staff_id>/enable")
@api_permission("staff.manage")
@idempotent
def enable(staff_id: int):
    return _change(lambda c: accounts.enable_staff(c, staff_id, actor=api_actor()))


@bp.post("/staff/<int:staff_id>/role")
@api_permission("staff.manage")
@idempotent
def change_role(staff_id: int):
    role = json_body().get("role")
    if not isinstance(role, str):
        raise ApiError("bad_request", field="role")
    return _change(lambda c: accounts.change_role(c, staff_id, role, actor=api_actor()))


@bp.post("/staff/<int:staff_id>/end-sessions")
@api_permission("staff.manage")
@idempotent
def end_sessions(staff_id: int):
    with transaction() as conn:
        ended = accounts.end_all_sessions(conn, staff_id, actor=api_actor())
    return jsonify({"sessions_ended": ended})


@bp.post("/staff/<int:staff_id>/password-reset")
@api_permission("staff.manage")
def reset_password(staff_id: int):
    with engine().begin() as conn:
        temporary = accounts.reset_password(conn, staff_id, actor=api_actor())
    return jsonify({"temporary_password": temporary, "must_change": True})


def _token_json(t) -> dict:
    return {"id": t.id, "staff_id": t.staff_id, "name": t.name,
            "roles": t.roles.split(",") if t.roles else None, "created_at": _at(t.created_at),
            "expires_at": _at(t.expires_at), "revoked_at": _at(t.revoked_at)}


@bp.get("/staff/<int:staff_id>/tokens")
@api_permission("staff.manage")
def list_tokens(staff_id: int):
    with engine().connect() as conn:
        return jsonify({"tokens": [_token_json(t) for t in tokens.list_tokens(conn, staff_id)]})


def _token_request() -> tuple[str, tuple[str, ...], datetime | None]:
    body = json_body()
    name, roles, expires = body.get("name"), body.get("roles") or [], body.get("expires_at")
    if not isinstance(name, str):
        raise ApiError("bad_request", field="name")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise ApiError("bad_request", field="roles")
    try:
        expires_at = datetime.fromisoformat(expires) if expires is not None else None
    except (TypeError, ValueError):
        raise ApiError("bad_request", field="expires_at") from None
    if expires_at is not None and expires_at.tzinfo is None:
        raise ApiError("bad_request", field="expires_at")
    return name, tuple(roles), expires_at


@bp.post("/staff/<int:staff_id>/tokens")
@api_permission("staff.manage")
def create_token(staff_id: int):
    name, roles, expires_at = _token_request()
    with engine().begin() as conn:
        token_id, token = tokens.create_token(conn, staff_id, name, actor=api_actor(),
                                              roles=roles, expires_at=expires_at)
    return jsonify({"id": token_id, "token": token}), 201


@bp.post("/tokens/<int:token_id>/revoke")
@api_permission("staff.manage")
@idempotent
def revoke_token(token_id: int):
    return _change(lambda c: tokens.revoke_token(c, token_id, actor=api_actor()))
