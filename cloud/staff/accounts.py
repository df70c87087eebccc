"""What an administrator does to staff accounts: disable and enable, change the role, reset the
password, end every session, and the record of each account's last sign-in.

Every change is audited with the state before and after, in the caller's transaction (the
audit row carries the request's source address: :mod:`cloud.core.audit`). The hub never runs
without an administrator: the last enabled account whose role may manage staff
(``staff.manage``) can be neither disabled nor given a role without it, checked with those
accounts' rows locked so that two administrators demoting each other at once cannot both win.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa

from cloud.core.audit import record
from cloud.core.errors import Code, HubError
from cloud.staff import passwords, sessions
from cloud.staff.roles import holders
from cloud.staff.staff import (
    HUB_POLICY,
    StaffError,
    check_password,
    check_role,
    hash_password,
    remember_password,
)
from cloud.staff.tables import staff
from sync.passwords import Policy
from sync.timeutil import utcnow

TEMPORARY_BYTES = 12  # a reset password: 16 URL-safe characters, shown once


class AccountError(HubError):
    """A refused change to a staff account."""

    codes = {
        "last_admin": Code(409, "the last enabled admin cannot be disabled or demoted"),
        "own_account": Code(409, "an admin cannot disable their own account"),
        "wrong_current_password": Code(422, "the current password is wrong"),
        "same_password": Code(422, "the new password must differ from the old one"),
    }


def _account(conn: sa.Connection, staff_id: int, lock: bool = False) -> sa.Row:
    query = sa.select(staff).where(staff.c.id == staff_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise StaffError("unknown_staff", staff_id=staff_id)
    return row


MANAGE_STAFF = "staff.manage"


def _keep_an_admin(conn: sa.Connection, staff_id: int) -> None:
    """Refuse when ``staff_id`` is the only enabled account that may manage staff (those
    accounts' rows locked first)."""
    admins = conn.execute(sa.select(staff.c.id).where(
        staff.c.role.in_(holders(conn, MANAGE_STAFF)), staff.c.disabled.is_(sa.false()))
        .order_by(staff.c.id).with_for_update()).scalars().all()
    if admins == [staff_id]:
        raise AccountError("last_admin")


def disable_staff(conn: sa.Connection, staff_id: int, actor: str) -> bool:
    """Disable an account: its sessions end now, it cannot sign in, its API tokens stop
    working. False when it was disabled already (nothing changes, nothing is audited)."""
    row = _account(conn, staff_id, lock=True)
    if row.disabled:
        return False
    if actor == f"staff:{staff_id}":
        raise AccountError("own_account")
    if row.role in holders(conn, MANAGE_STAFF):
        _keep_an_admin(conn, staff_id)
    conn.execute(sa.update(staff).where(staff.c.id == staff_id).values(disabled=True))
    ended = sessions.end_sessions_of(conn, staff_id)
    record(conn, actor, "staff.disable", f"staff:{staff_id}", {"disabled": False},
           {"disabled": True, "sessions_ended": ended})
    return True


def enable_staff(conn: sa.Connection, staff_id: int, actor: str) -> bool:
    """Enable a disabled account again; False when it was enabled already."""
    row = _account(conn, staff_id, lock=True)
    if not row.disabled:
        return False
    conn.execute(sa.update(staff).where(staff.c.id == staff_id).values(disabled=False))
    record(conn, actor, "staff.enable", f"staff:{staff_id}", {"disabled": True},
           {"disabled": False})
    return True


def change_role(conn: sa.Connection, staff_id: int, role: str, actor: str) -> bool:
    """Give an account another role (it takes effect at its next request); False when it had
    that role already."""
    check_role(conn, role)
    row = _account(conn, staff_id, lock=True)
    if row.role == role:
        return False
    managers = holders(conn, MANAGE_STAFF)
    if row.role in managers and role not in managers and not row.disabled:
        _keep_an_admin(conn, staff_id)
    conn.execute(sa.update(staff).where(staff.c.id == staff_id).values(role=role))
    record(conn, actor, "staff.role", f"staff:{staff_id}", {"role": row.role}, {"role": role})
    return True


def reset_password(conn: sa.Connection, staff_id: int, actor: str) -> str:
    """A temporary password (returned once, kept only hashed) that the user must replace at
    their next sign-in, before any session (marked as not chosen by its holder, as
    :mod:`cloud.staff.passwords` does); their sessions end and a lockout is lifted."""
    row = _account(conn, staff_id, lock=True)
    temporary = secrets.token_urlsafe(TEMPORARY_BYTES)
    hashed = hash_password(temporary)
    conn.execute(sa.update(staff).where(staff.c.id == staff_id).values(
        password_hash=hashed, password_changed_at=None, failed_logins=0, locked_until=None))
    remember_password(conn, staff_id, hashed, utcnow())  # so it cannot be kept
    ended = sessions.end_sessions_of(conn, staff_id)
    record(conn, actor, "staff.password_reset", f"staff:{staff_id}",
           {"must_change": row.password_changed_at is None},
           {"must_change": True, "sessions_ended": ended})
    return temporary


def change_own_password(conn: sa.Connection, staff_id: int, current: str, new: str,
                        policy: Policy = HUB_POLICY, now: datetime | None = None) -> None:
    """A staff member sets their own password whenever they like: the current one must be
    right and the new one pass the policy (strength, and none of the recent ones)."""
    row = _account(conn, staff_id, lock=True)
    if not check_password(current, row.password_hash):
        raise AccountError("wrong_current_password")
    if current == new:
        raise AccountError("same_password")
    passwords.renew_password(conn, staff_id, new, policy, now)


def end_all_sessions(conn: sa.Connection, staff_id: int, actor: str) -> int:
    """End every live page session of an account (it must sign in again); how many ended."""
    _account(conn, staff_id)
    ended = sessions.end_sessions_of(conn, staff_id)
    record(conn, actor, "staff.sessions_end", f"staff:{staff_id}", None,
           {"sessions_ended": ended})
    return ended


def note_sign_in(conn: sa.Connection, staff_id: int, source: str | None,
                 now: datetime | None = None) -> None:
    """Keep an account's last sign-in time and source address, and audit the sign-in."""
    now = now or utcnow()
    source = source[:64] if source else None
    conn.execute(sa.update(staff).where(staff.c.id == staff_id).values(
        last_sign_in_at=now, last_sign_in_from=source))
    record(conn, f"staff:{staff_id}", "staff.sign_in", f"staff:{staff_id}", None,
           {"from": source})
