"""Staff accounts, passwords and lockout. (Roles and what they may do: cloud/staff/roles.py.)

Passwords are hashed with scrypt (stdlib ``hashlib.scrypt``; N=2^15, r=8, p=1, a 16-byte salt),
slow on purpose. Five wrong passwords in a row lock the account for 15 minutes; the error a
caller sees never says whether the username exists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from cloud.core.audit import record
from cloud.core.errors import Code, HubError
from cloud.staff.roles import role_names
from cloud.staff.tables import password_history, staff, staff_totp
from sync.passwords import Policy, WeakPassword, check_strength
from sync.timeutil import utcnow

# The hub's words an attacker guesses first, besides the shared ones (sync/passwords.py).
HUB_WORDS = ("cloud", "sales", "ops", "finance")
# The hub's password settings, unless the app's configuration says otherwise
# (cloud/staff/passwords.py: policy_from): the last five passwords may not be chosen again;
# no forced expiry (a forced change makes people pick weaker, related passwords).
HUB_POLICY = Policy(history=5)
# How many old hashes an account keeps, whatever the setting (the most it may be raised to).
KEEP_HASHES = 24
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
_N, _R, _P = 2**15, 8, 1
# What an unknown username's password is checked against: the cost of a real hash, a digest
# nothing hashes to (random bytes, not the hash of anything), made without hashing at start.
DUMMY_HASH = (f"scrypt${_N}${_R}${_P}${base64.b64encode(os.urandom(16)).decode()}$"
              f"{base64.b64encode(os.urandom(64)).decode()}")


class StaffError(HubError):
    """A refused login, account or token request."""

    codes = {
        # the shared password policy's refusals (sync/passwords.py), raised again as ours
        "password_too_short": Code(422, "a password needs at least %(min)s characters"),
        "password_too_long": Code(422, "a password has at most %(max)s characters"),
        "password_has_username": Code(422, "a password must not contain the username"),
        "password_too_weak": Code(422, "this password is too easy to guess (score %(score)s, "
                                  "at least %(min_score)s of 4 needed)"),
        "password_reused": Code(422, "a password may not be one of the last %(history)s used"),
        "bad_role": Code(422, "role must be one of %(roles)s"),
        "bad_username": Code(422, "a username is 1 to 80 printable characters"),
        "username_taken": Code(409, "there is already a staff member '%(username)s'"),
        "bad_login": Code(401, "wrong username or password"),
        "locked": Code(401, "too many wrong passwords: try again later"),
        "unknown_staff": Code(404, "no staff member %(staff_id)s"),
        "bad_token": Code(401, "unknown or revoked API token"),
    }


def _utc(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P,
                            maxmem=64 * 1024 * 1024)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}$" \
           f"{base64.b64encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n),
                         r=int(r), p=int(p), maxmem=64 * 1024 * 1024)
    return hmac.compare_digest(got, base64.b64decode(digest))


def check_policy(password: str, username: str, policy: Policy = HUB_POLICY) -> None:
    """The shared password policy (sync/passwords.py), its refusal as the hub's code."""
    try:
        check_strength(password, username, policy, HUB_WORDS)
    except WeakPassword as e:
        raise StaffError(e.code, **e.params) from None


def remember_password(conn: sa.Connection, staff_id: int, password_hash: str,
                      now: datetime) -> None:
    """Keep a newly set password's hash for the reuse limit, and only the newest KEEP_HASHES."""
    conn.execute(sa.insert(password_history).values(staff_id=staff_id,
                                                    password_hash=password_hash, created_at=now))
    keep = (sa.select(password_history.c.id).where(password_history.c.staff_id == staff_id)
            .order_by(password_history.c.id.desc()).limit(KEEP_HASHES))
    conn.execute(sa.delete(password_history).where(password_history.c.staff_id == staff_id,
                                                   password_history.c.id.not_in(keep)))


def check_role(conn: sa.Connection, role: str) -> None:
    """Refuse a role the ``roles`` table does not hold (``bad_role``, naming those it does)."""
    known = role_names(conn)
    if role not in known:
        raise StaffError("bad_role", roles=", ".join(known))


def create_staff(conn: sa.Connection, username: str, password: str, role: str,
                 actor: str, policy: Policy = HUB_POLICY, chosen: bool = True) -> int:
    """A new account. ``chosen=False`` when someone else chose its first password (an
    administrator on the staff page): its holder chooses their own at the first sign-in."""
    check_role(conn, role)
    if not username or len(username) > 80 or not username.isprintable():
        raise StaffError("bad_username")
    check_policy(password, username, policy)
    if conn.execute(sa.select(staff.c.id).where(staff.c.username == username)).first():
        raise StaffError("username_taken", username=username)
    now, hashed = utcnow(), hash_password(password)
    staff_id = conn.execute(sa.insert(staff).values(
        username=username, password_hash=hashed, role=role, created_at=now,
        password_changed_at=now if chosen else None)).inserted_primary_key[0]
    remember_password(conn, staff_id, hashed, now)
    record(conn, actor, "staff.create", f"staff:{staff_id}", None,
           {"username": username, "role": role})
    return staff_id


@dataclass(frozen=True)
class Staff:
    id: int
    username: str
    role: str


def login(engine: sa.Engine, username: str, password: str,
          now: datetime | None = None) -> Staff:
    """Check a password; counts failures and locks the account after MAX_FAILURES.

    Takes the engine, not a connection: a failed attempt is committed in its own transaction
    before the refusal is raised, so no caller's rollback can forget it.
    """
    now = now or utcnow()
    refused = StaffError("bad_login")
    with engine.begin() as conn:
        row = conn.execute(sa.select(staff).where(staff.c.username == username)).first()
        # exactly one password hash whatever the account's state (unknown, disabled, locked or
        # not), so that the time taken tells nobody which it is
        ok = check_password(password, row.password_hash if row is not None else DUMMY_HASH)
        if row is None or row.disabled:
            raise refused
        if row.locked_until is not None and _utc(row.locked_until) > now:
            raise StaffError("locked")
        # with a second step the count starts again only after it (cloud/staff/totp.py), so
        # that wrong codes and wrong passwords add up to one lockout
        if ok and (row.failed_logins or row.locked_until) and not _has_second_step(conn, row.id):
            conn.execute(sa.update(staff).where(staff.c.id == row.id)
                         .values(failed_logins=0, locked_until=None))
        if not ok:
            count_failure(conn, row.id, now)
    if not ok:
        raise refused
    return Staff(row.id, row.username, row.role)


def count_failure(conn: sa.Connection, staff_id: int, now: datetime) -> bool:
    """One more wrong password or code for an account; at MAX_FAILURES it is locked for
    LOCKOUT (and the count starts again). The count is one conditional statement, so wrong
    attempts racing in parallel each count. True when this failure locked the account."""
    failures = conn.execute(sa.update(staff).where(staff.c.id == staff_id)
                            .values(failed_logins=staff.c.failed_logins + 1)
                            .returning(staff.c.failed_logins)).scalar()
    if failures is None or failures < MAX_FAILURES:
        return False
    conn.execute(sa.update(staff).where(staff.c.id == staff_id)
                 .values(failed_logins=0, locked_until=now + LOCKOUT))
    record(conn, "system", "staff.locked", f"staff:{staff_id}")
    return True


def _has_second_step(conn: sa.Connection, staff_id: int) -> bool:
    return conn.execute(sa.select(staff_totp.c.staff_id).where(
        staff_totp.c.staff_id == staff_id, staff_totp.c.confirmed_at.is_not(None))).first() \
        is not None


def unlock_staff(conn: sa.Connection, staff_id: int, actor: str) -> None:
    """Clear a lockout and the count of wrong passwords, before the lockout runs out."""
    row = conn.execute(sa.select(staff.c.failed_logins, staff.c.locked_until)
                       .where(staff.c.id == staff_id)).first()
    if row is None:
        raise StaffError("unknown_staff", staff_id=staff_id)
    conn.execute(sa.update(staff).where(staff.c.id == staff_id)
                 .values(failed_logins=0, locked_until=None))
    record(conn, actor, "staff.unlock", f"staff:{staff_id}",
           {"failed_logins": row.failed_logins,
            "locked_until": _utc(row.locked_until).isoformat() if row.locked_until else None},
           {"failed_logins": 0, "locked_until": None})
