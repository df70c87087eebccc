"""Local staff accounts on the appliance: passwords, the password policy, lockout.

The appliance keeps its own accounts (it must work with the hub unreachable). Passwords are
hashed with scrypt (stdlib ``hashlib.scrypt``; N=2^15, r=8, p=1, a 16-byte salt), slow on
purpose. Five wrong passwords in a row lock the account for 15 minutes; the failure is counted
in its own transaction, and the error a caller sees never says whether the username exists.
A password older than the configured maximum age must be changed before anything else.

Rules here are plain functions on a sqlite3 connection; the web pages and the CLI call them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge import audit
from edge.db import immediate
from sync import passwords
from sync.passwords import WeakPassword, check_strength
from sync.timeutil import from_iso, to_iso, utcnow

ROLES = ("admin", "supervisor", "gate")
# What each role may do includes what the roles after it may do.
RANK = {"gate": 0, "supervisor": 1, "admin": 2}
MIN_PASSWORD = passwords.MIN_LENGTH
# The shared policy (strength only: the appliance's few local accounts keep no history; the
# maximum age is the configuration's password_max_age_days), and the appliance's own words.
EDGE_POLICY = passwords.Policy()
EDGE_WORDS = ("appliance", "supervisor", "lane", "turnstile")
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
# What an unknown username's password is checked against: the cost of a real hash, a digest
# nothing hashes to (random bytes, not the hash of anything), made without hashing at start.
DUMMY_HASH = (f"scrypt${_N}${_R}${_P}${base64.b64encode(os.urandom(16)).decode()}$"
              f"{base64.b64encode(os.urandom(64)).decode()}")


class StaffError(Exception):
    """A refused login or account change; ``code`` is machine-readable, the message plain;
    a refused password also says why in ``detail`` (sync/passwords.py's code) and ``params``."""

    def __init__(self, code: str, message: str, detail: str | None = None, **params):
        super().__init__(message)
        self.code = code
        self.detail = detail
        self.params = params


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    role: str
    lang: str | None = None
    must_change_password: bool = False

    def may(self, role: str) -> bool:
        """Whether this account has at least ``role``'s rights."""
        return RANK[self.role] >= RANK[role]


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P,
                            maxmem=_MAXMEM)
    return (f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), maxmem=_MAXMEM)
        return hmac.compare_digest(got, base64.b64decode(digest))
    except ValueError:
        return False


def check_policy(password: str, username: str) -> None:
    """The shared password policy (sync/passwords.py): a refusal is ``weak_password`` whose
    ``detail`` is the policy's own code (``params`` the values its words name)."""
    try:
        check_strength(password, username, EDGE_POLICY, EDGE_WORDS)
    except WeakPassword as e:
        raise StaffError("weak_password", str(e), detail=e.code, **e.params) from None


def _check_username(username: str) -> None:
    if not _USERNAME.match(username or ""):
        raise StaffError("bad_username", "a username is 1 to 64 letters, digits or . _ @ -")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise StaffError("bad_role", f"role must be one of {', '.join(ROLES)}")


def has_admin(conn: sqlite3.Connection) -> bool:
    """Whether an enabled admin exists; until one does, the web pages offer only first-run."""
    return conn.execute("SELECT 1 FROM staff_users WHERE role = 'admin' AND disabled = 0 "
                        "LIMIT 1").fetchone() is not None


def create_user(conn: sqlite3.Connection, username: str, password: str, role: str, actor: str,
                lang: str | None = None, must_change: bool = False) -> int:
    """A new account. ``must_change`` makes the first login ask for a new password (an admin
    who sets another person's password should not know it afterwards)."""
    _check_username(username)
    _check_role(role)
    check_policy(password, username)
    hashed = hash_password(password)  # slow: outside the write lock
    now = to_iso(utcnow())
    with immediate(conn):
        if conn.execute("SELECT 1 FROM staff_users WHERE username = ?", (username,)).fetchone():
            raise StaffError("exists", f"there is already an account {username!r}")
        cur = conn.execute(
            "INSERT INTO staff_users (username, password_hash, role, created_at, "
            "password_changed_at, lang) VALUES (?, ?, ?, ?, ?, ?)",
            (username, hashed, role, now, None if must_change else now, lang))
        audit.record(conn, actor, "staff.create", f"staff:{cur.lastrowid}",
                     {"username": username, "role": role})
    return cur.lastrowid


def first_admin(conn: sqlite3.Connection, username: str, password: str,
                lang: str | None = None) -> int:
    """The first-run admin: only while no enabled admin exists (checked under the write lock,
    so two browsers racing through first-run make exactly one)."""
    _check_username(username)
    check_policy(password, username)
    hashed = hash_password(password)
    now = to_iso(utcnow())
    with immediate(conn):
        if has_admin(conn):
            raise StaffError("exists", "the appliance already has an admin: log in")
        row = conn.execute("SELECT id FROM staff_users WHERE username = ?",
                           (username,)).fetchone()
        if row:
            conn.execute("UPDATE staff_users SET password_hash = ?, role = 'admin', disabled = 0, "
                         "password_changed_at = ?, failed_logins = 0, locked_until = NULL, "
                         "lang = coalesce(?, lang) WHERE id = ?", (hashed, now, lang, row[0]))
            staff_id = row[0]
        else:
            staff_id = conn.execute(
                "INSERT INTO staff_users (username, password_hash, role, created_at, "
                "password_changed_at, lang) VALUES (?, ?, 'admin', ?, ?, ?)",
                (username, hashed, now, now, lang)).lastrowid
        audit.record(conn, username, "staff.first_admin", f"staff:{staff_id}",
                     {"username": username})
    return staff_id


def login(conn: sqlite3.Connection, username: str, password: str, max_age_days: int = 0,
          now: datetime | None = None) -> StaffUser:
    """Check a password; counts failures and locks the account after MAX_FAILURES.

    The failure count is committed before the refusal is raised. A password past its maximum
    age still logs in, with ``must_change_password`` set: the pages then allow nothing but
    choosing a new one.
    """
    now = now or utcnow()
    refused = StaffError("bad_login", "wrong username or password")
    row = conn.execute(
        "SELECT id, username, password_hash, role, disabled, failed_logins, locked_until, "
        "password_changed_at, lang FROM staff_users WHERE username = ?",
        (username,)).fetchone()
    # Exactly one password hash whatever the account's state (unknown, locked, disabled or
    # not), so that the time taken tells nobody which it is.
    ok = check_password(password, row[2] if row is not None else DUMMY_HASH)
    if row is None:
        raise refused
    staff_id, name, stored, role, disabled, failures, locked_until, changed_at, lang = row
    if locked_until and from_iso(locked_until) > now:
        raise StaffError("locked", "too many wrong passwords: try again in 15 minutes or ask "
                         "an admin to unlock the account")
    if not ok:
        with immediate(conn):
            (failures,) = conn.execute(
                "UPDATE staff_users SET failed_logins = failed_logins + 1 WHERE id = ? "
                "RETURNING failed_logins", (staff_id,)).fetchone()
            if failures >= MAX_FAILURES:
                conn.execute("UPDATE staff_users SET failed_logins = 0, locked_until = ? "
                             "WHERE id = ?", (to_iso(now + LOCKOUT), staff_id))
                audit.record(conn, "system", "staff.locked", f"staff:{staff_id}",
                             {"username": name, "failures": failures})
        raise refused
    if disabled:
        raise refused
    if failures or locked_until:
        conn.execute("UPDATE staff_users SET failed_logins = 0, locked_until = NULL WHERE id = ?",
                     (staff_id,))
    return StaffUser(staff_id, name, role, lang,
                     must_change_password=_expired(changed_at, max_age_days, now))


def _expired(changed_at: str | None, max_age_days: int, now: datetime) -> bool:
    return passwords.expired(from_iso(changed_at) if changed_at else None, now,
                             passwords.Policy(max_age_days=max_age_days))


def get_user(conn: sqlite3.Connection, staff_id: int, max_age_days: int = 0,
             now: datetime | None = None) -> StaffUser | None:
    """The account behind a session, or None if it is gone or disabled."""
    row = conn.execute("SELECT id, username, role, disabled, password_changed_at, lang "
                       "FROM staff_users WHERE id = ?", (staff_id,)).fetchone()
    if row is None or row[3]:
        return None
    now = now or utcnow()
    return StaffUser(row[0], row[1], row[2], row[5],
                     must_change_password=_expired(row[4], max_age_days, now))


def change_password(conn: sqlite3.Connection, user: StaffUser, current: str, new: str) -> None:
    """The account holder's own change: the current password is required, the new one must
    pass the policy and differ from the current one."""
    (stored,) = conn.execute("SELECT password_hash FROM staff_users WHERE id = ?",
                             (user.id,)).fetchone()
    if not check_password(current, stored):
        raise StaffError("bad_login", "the current password is wrong")
    if new == current:
        raise StaffError("weak_password", "the new password must differ from the current one")
    check_policy(new, user.username)
    hashed = hash_password(new)
    with immediate(conn):
        conn.execute("UPDATE staff_users SET password_hash = ?, password_changed_at = ? "
                     "WHERE id = ?", (hashed, to_iso(utcnow()), user.id))
        audit.record(conn, user.username, "staff.password", f"staff:{user.id}")


def set_password(conn: sqlite3.Connection, staff_id: int, password: str, actor: str) -> None:
    """An admin sets another account's password; its holder must change it at the next login."""
    row = conn.execute("SELECT username FROM staff_users WHERE id = ?", (staff_id,)).fetchone()
    if row is None:
        raise StaffError("not_found", "no such account")
    check_policy(password, row[0])
    hashed = hash_password(password)
    with immediate(conn):
        conn.execute("UPDATE staff_users SET password_hash = ?, password_changed_at = NULL, "
                     "failed_logins = 0, locked_until = NULL WHERE id = ?", (hashed, staff_id))
        audit.record(conn, actor, "staff.reset_password", f"staff:{staff_id}",
                     {"username": row[0]})


def update_user(conn: sqlite3.Connection, staff_id: int, actor: str, *, role: str | None = None,
                disabled: bool | None = None, unlock: bool = False) -> None:
    """Change an account's role, disable or enable it, or lift a lockout. The last enabled
    admin can be neither demoted nor disabled: the appliance would have nobody to run it."""
    if role is not None:
        _check_role(role)
    with immediate(conn):
        row = conn.execute("SELECT username, role, disabled, locked_until FROM staff_users "
                           "WHERE id = ?", (staff_id,)).fetchone()
        if row is None:
            raise StaffError("not_found", "no such account")
        username, old_role, old_disabled, _ = row
        new_role = role or old_role
        new_disabled = old_disabled if disabled is None else int(disabled)
        if old_role == "admin" and not old_disabled and (new_role != "admin" or new_disabled):
            (admins,) = conn.execute("SELECT count(*) FROM staff_users WHERE role = 'admin' "
                                     "AND disabled = 0").fetchone()
            if admins <= 1:
                raise StaffError("last_admin", "the last admin cannot be demoted or disabled")
        conn.execute("UPDATE staff_users SET role = ?, disabled = ? WHERE id = ?",
                     (new_role, new_disabled, staff_id))
        if unlock:
            conn.execute("UPDATE staff_users SET failed_logins = 0, locked_until = NULL "
                         "WHERE id = ?", (staff_id,))
        audit.record(conn, actor, "staff.update", f"staff:{staff_id}", {
            "username": username, "role": [old_role, new_role],
            "disabled": [bool(old_disabled), bool(new_disabled)], "unlock": unlock})


def set_language(conn: sqlite3.Connection, staff_id: int, lang: str | None) -> None:
    conn.execute("UPDATE staff_users SET lang = ? WHERE id = ?", (lang, staff_id))


def list_users(conn: sqlite3.Connection) -> list[dict]:
    rows = conn.execute(
        "SELECT id, username, role, disabled, created_at, password_changed_at, failed_logins, "
        "locked_until, lang FROM staff_users ORDER BY username").fetchall()
    keys = ("id", "username", "role", "disabled", "created_at", "password_changed_at",
            "failed_logins", "locked_until", "lang")
    return [dict(zip(keys, r, strict=True)) for r in rows]
