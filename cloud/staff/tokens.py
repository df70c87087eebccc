"""API tokens for the staff tools' JSON API: created (the token shown once, only its SHA-256
kept), listed (never shown again), scoped to roles, expiring, revoked.

A token acts for its owner. Unscoped, it has the owner's role; scoped, it has only the roles
it names, each one giving nothing the owner's role does not (an administrator's token may be
scoped to ``sales``; a box-office clerk's may not carry ``admin``). What it may do is the union
of its roles' permissions intersected with its owner's (:mod:`cloud.staff.roles`). A token
stops working when it is revoked, when it expires, when its owner is disabled, and when a role
it carries gives more than its owner's role now does (roles and permissions are read on every
request).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from cloud.core.audit import record
from cloud.core.errors import Code, HubError
from cloud.staff.roles import role_names, within
from cloud.staff.staff import Staff, StaffError
from cloud.staff.tables import api_tokens, role_permissions, staff
from sync.timeutil import utcnow

PREFIX = "wkt_"


class TokenError(HubError):
    """A refused API-token request."""

    codes = {
        "bad_token_name": Code(422, "a token's name is 1 to 80 printable characters"),
        "bad_token_roles": Code(422, "a token's roles must be among %(roles)s"),
        "bad_expiry": Code(422, "a token's expiry must be in the future"),
        "unknown_token": Code(404, "no API token %(token_id)s"),
    }


@dataclass(frozen=True)
class Bearer:
    """Who a presented token acts for, with which roles, and what it may do."""

    staff: Staff
    roles: tuple[str, ...]
    token_id: int
    permissions: frozenset[str] = frozenset()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def allowed_roles(conn: sa.Connection, owner_role: str) -> tuple[str, ...]:
    """The roles a token of an owner with ``owner_role`` may carry: those that give nothing
    the owner's role does not."""
    return tuple(r for r in role_names(conn) if within(conn, r, owner_role))


def create_token(conn: sa.Connection, staff_id: int, name: str, actor: str,
                 roles: tuple[str, ...] = (), expires_at: datetime | None = None,
                 now: datetime | None = None) -> tuple[int, str]:
    """A new token for ``staff_id``: its id and the token itself (shown once, never again)."""
    now = now or utcnow()
    name = name.strip()
    if not name or len(name) > 80 or not name.isprintable():
        raise TokenError("bad_token_name")
    owner = conn.execute(sa.select(staff.c.role).where(staff.c.id == staff_id)).first()
    if owner is None:
        raise StaffError("unknown_staff", staff_id=staff_id)
    allowed = allowed_roles(conn, owner.role)
    if any(r not in allowed for r in roles):
        raise TokenError("bad_token_roles", roles=", ".join(allowed))
    if expires_at is not None and _utc(expires_at) <= now:
        raise TokenError("bad_expiry")
    scope = ",".join(r for r in allowed if r in roles) or None
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(sa.insert(api_tokens).values(
        staff_id=staff_id, name=name, token_hash=_hash(token), created_at=now, roles=scope,
        expires_at=expires_at)).inserted_primary_key[0]
    record(conn, actor, "token.create", f"token:{token_id}", None,
           {"staff_id": staff_id, "name": name, "roles": scope,
            "expires_at": expires_at.isoformat() if expires_at else None})
    return token_id, token


def list_tokens(conn: sa.Connection, staff_id: int | None = None) -> list[sa.Row]:
    """Tokens (never the token itself: only what it is called, whose, its roles and dates)."""
    query = (sa.select(api_tokens.c.id, api_tokens.c.staff_id, staff.c.username,
                       api_tokens.c.name, api_tokens.c.roles, api_tokens.c.created_at,
                       api_tokens.c.expires_at, api_tokens.c.revoked_at)
             .join(staff, staff.c.id == api_tokens.c.staff_id).order_by(api_tokens.c.id))
    if staff_id is not None:
        query = query.where(api_tokens.c.staff_id == staff_id)
    return conn.execute(query).all()


def revoke_token(conn: sa.Connection, token_id: int, actor: str,
                 now: datetime | None = None) -> bool:
    """Revoke a token for good; False when it was revoked already."""
    row = conn.execute(sa.select(api_tokens.c.revoked_at, api_tokens.c.staff_id)
                       .where(api_tokens.c.id == token_id).with_for_update()).first()
    if row is None:
        raise TokenError("unknown_token", token_id=token_id)
    if row.revoked_at is not None:
        return False
    now = now or utcnow()
    conn.execute(sa.update(api_tokens).where(api_tokens.c.id == token_id)
                 .values(revoked_at=now))
    record(conn, actor, "token.revoke", f"token:{token_id}", {"revoked_at": None},
           {"revoked_at": now.isoformat(), "staff_id": row.staff_id})
    return True


def _like_literal(column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """A column's text as a LIKE pattern matching only itself (escape character ``\\``)."""
    for special in ("\\", "%", "_"):
        column = sa.func.replace(column, special, "\\" + special)
    return column


def _bearer_statement() -> sa.Select:
    scope = sa.literal(",").concat(api_tokens.c.roles).concat(",")
    return sa.select(
        staff.c.id, staff.c.username, staff.c.role, staff.c.disabled,
        api_tokens.c.id.label("token_id"), api_tokens.c.roles, api_tokens.c.expires_at,
        role_permissions.c.role.label("granted_to"), role_permissions.c.permission
    ).join(api_tokens, api_tokens.c.staff_id == staff.c.id).outerjoin(role_permissions, sa.or_(
        role_permissions.c.role == staff.c.role,
        scope.like(sa.literal("%,").concat(_like_literal(role_permissions.c.role)).concat(",%"),
                   escape="\\"))
    ).where(api_tokens.c.token_hash == sa.bindparam("token_hash"),
            api_tokens.c.revoked_at.is_(None))


_BEARER = _bearer_statement()


def bearer(conn: sa.Connection, token: str, now: datetime | None = None) -> Bearer:
    """Who a presented token acts for, with which roles and permissions, or ``bad_token``
    (unknown, revoked, expired, owner disabled, or a role in its scope that gives more than
    the owner's role now does). One statement: the token, its owner and the permissions of
    the owner's role and of the token's roles (a row per permission), as every API call
    reads it."""
    now = now or utcnow()
    rows = conn.execute(_BEARER, {"token_hash": _hash(token)}).all()
    row = rows[0] if rows else None
    if row is None or row.disabled or (row.expires_at is not None
                                       and _utc(row.expires_at) <= now):
        raise StaffError("bad_token")
    roles = tuple(row.roles.split(",")) if row.roles else (row.role,)
    held: dict[str, set[str]] = {name: set() for name in (row.role, *roles)}
    for r in rows:
        if r.granted_to is not None:
            held[r.granted_to].add(r.permission)
    owner = held[row.role]
    if any(not held[r] <= owner for r in roles):
        raise StaffError("bad_token")
    return Bearer(Staff(row.id, row.username, row.role), roles, row.token_id,
                  frozenset().union(*(held[r] for r in roles)) & owner)
