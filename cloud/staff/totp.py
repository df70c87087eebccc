"""The second step of a staff sign-in: time-based one-time passwords (RFC 6238, with pyotp)
and one-time recovery codes.

A staff member enrols by scanning the secret (as a QR code, or typed from its text) into an
authenticator app, and confirms with a first code; only then is the secret used, and ten
recovery codes are made, shown once and kept only as SHA-256 hashes, each good for one
sign-in. A code is accepted for the current 30-second step or one either side (clocks
drift), and never twice: ``last_step`` remembers the newest step accepted. A wrong code
counts with the wrong passwords towards the account's lockout (:mod:`cloud.staff.staff`), and
the count is committed in its own transaction before the refusal is raised.

The secret is sealed at rest under the hub's data key, for its account's row
(:func:`_seal` / :func:`_unseal` are the one place it is read and written), and sealed again
by a data key rotation (:func:`reseal_secrets`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
import sqlalchemy as sa

from cloud.core.audit import record
from cloud.core.errors import Code, HubError
from cloud.core.seal import context, key_id_of, keyring_for
from cloud.staff.roles import totp_required
from cloud.staff.staff import Staff, count_failure
from cloud.staff.tables import recovery_codes, staff, staff_totp
from sync.timeutil import utcnow

ISSUER = "Wicket hub"
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
VALID_WINDOW = 1


class TotpError(HubError):
    """A refused enrolment or second step."""

    codes = {
        "totp_not_enrolling": Code(409, "no enrolment of a one-time password is under way"),
        "totp_enrolled": Code(409, "this account already has a one-time password"),
        "bad_totp": Code(401, "wrong or used code"),
        "totp_locked": Code(401, "too many wrong passwords or codes: try again later"),
    }


def required(conn: sa.Connection, role: str, override: tuple[str, ...] | None = None) -> bool:
    """Whether staff of this role must sign in with a second step: the role's own flag
    (``roles.totp_required``: the system administrator and finance as seeded), unless the
    hub's setting TOTP_REQUIRED_ROLES names the roles instead (``override``; an empty tuple:
    no role must)."""
    if override is not None:
        return role in override
    return totp_required(conn, role)


def _where(staff_id: int) -> str:
    return context("staff_totp", staff_id, "secret")


def _seal(conn: sa.Connection, staff_id: int, secret: str) -> str:
    """The secret sealed under the hub's data key for this account's row (cloud/core/seal.py):
    a database dump alone cannot make anyone's codes."""
    return keyring_for(conn).seal(secret, _where(staff_id))


def _unseal(conn: sa.Connection, staff_id: int, stored: str) -> str:
    return keyring_for(conn).open(stored, _where(staff_id))


def reseal_secrets(conn: sa.Connection, after_id: int, limit: int) -> tuple[int | None, int, int]:
    """One batch of a data key rotation (``wicket-hub rotate-data-key``): the secrets of the
    accounts after ``after_id`` sealed again under the current key; as
    :func:`cloud.sales.holders.reseal_holders`, the last id looked at (None at the end), how
    many rows were looked at and how many changed."""
    ring = keyring_for(conn)
    rows = conn.execute(sa.select(staff_totp.c.staff_id, staff_totp.c.secret)
                        .where(staff_totp.c.staff_id > after_id)
                        .order_by(staff_totp.c.staff_id).limit(limit)).all()
    if not rows:
        return None, 0, 0
    stale = [r for r in rows if key_id_of(r.secret) != ring.current_id]
    for r in stale:
        conn.execute(sa.update(staff_totp).where(staff_totp.c.staff_id == r.staff_id).values(
            secret=ring.seal(ring.open(r.secret, _where(r.staff_id)), _where(r.staff_id))))
    return rows[-1].staff_id, len(rows), len(stale)


def count_secrets(conn: sa.Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(staff_totp)).scalar_one()


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def enrolled(conn: sa.Connection, staff_id: int) -> bool:
    return conn.execute(sa.select(staff_totp.c.staff_id).where(
        staff_totp.c.staff_id == staff_id, staff_totp.c.confirmed_at.is_not(None))).first() \
        is not None


def start_enrolment(conn: sa.Connection, staff_id: int, now: datetime | None = None) -> str:
    """A new secret for an account that has none confirmed (an unconfirmed one is replaced);
    returns it for the page to show once, as a QR code and as text."""
    if enrolled(conn, staff_id):
        raise TotpError("totp_enrolled")
    secret = pyotp.random_base32()
    conn.execute(sa.delete(staff_totp).where(staff_totp.c.staff_id == staff_id))
    conn.execute(sa.insert(staff_totp).values(staff_id=staff_id, secret=_seal(conn, staff_id, secret),
                                              created_at=now or utcnow()))
    return secret


def pending_secret(conn: sa.Connection, staff_id: int) -> str | None:
    """The secret of an enrolment under way (to show it again), or None."""
    stored = conn.execute(sa.select(staff_totp.c.secret).where(
        staff_totp.c.staff_id == staff_id, staff_totp.c.confirmed_at.is_(None))).scalar()
    return _unseal(conn, staff_id, stored) if stored is not None else None


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def _matching_step(secret: str, code: str, last_step: int | None, now: datetime) -> int | None:
    totp = pyotp.TOTP(secret)
    code = code.strip().replace(" ", "")
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if (last_step is None or step > last_step) and hmac.compare_digest(
                totp.generate_otp(step), code):
            return step
    return None


def confirm_enrolment(conn: sa.Connection, staff_id: int, code: str, actor: str,
                      now: datetime | None = None) -> list[str]:
    """Turn on the second step with a first code from the app; returns the recovery codes,
    to be shown once (only their hashes are kept)."""
    now = now or utcnow()
    secret = pending_secret(conn, staff_id)
    if secret is None:
        raise TotpError("totp_not_enrolling")
    step = _matching_step(secret, code, None, now)
    if step is None:
        raise TotpError("bad_totp")
    conn.execute(sa.update(staff_totp).where(staff_totp.c.staff_id == staff_id)
                 .values(confirmed_at=now, last_step=step))
    codes = new_recovery_codes(conn, staff_id)
    record(conn, actor, "staff.totp_enrol", f"staff:{staff_id}")
    return codes


def new_recovery_codes(conn: sa.Connection, staff_id: int, actor: str | None = None) -> list[str]:
    """Replace the account's recovery codes with :data:`RECOVERY_CODES` new ones (audited when
    someone asks for them: ``actor``; the enrolment's first codes are part of its record)."""
    codes = ["-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5))
                      for _ in range(2)) for _ in range(RECOVERY_CODES)]
    conn.execute(sa.delete(recovery_codes).where(recovery_codes.c.staff_id == staff_id))
    conn.execute(sa.insert(recovery_codes),
                 [{"staff_id": staff_id, "code_hash": _hash(c)} for c in codes])
    if actor is not None:
        record(conn, actor, "staff.recovery_codes", f"staff:{staff_id}")
    return codes


def _accept(conn: sa.Connection, staff_id: int, code: str, now: datetime) -> str | None:
    """How the code was accepted (``totp`` or ``recovery``, marking it used), or None."""
    row = conn.execute(sa.select(staff_totp.c.secret, staff_totp.c.last_step).where(
        staff_totp.c.staff_id == staff_id, staff_totp.c.confirmed_at.is_not(None))).first()
    if row is None:
        return None
    step = _matching_step(_unseal(conn, staff_id, row.secret), code, row.last_step, now)
    if step is not None:
        # conditional, so two requests racing with one code accept it once
        taken = conn.execute(sa.update(staff_totp).where(
            staff_totp.c.staff_id == staff_id,
            sa.or_(staff_totp.c.last_step.is_(None), staff_totp.c.last_step < step))
            .values(last_step=step)).rowcount
        return "totp" if taken else None
    used = conn.execute(sa.update(recovery_codes).where(
        recovery_codes.c.staff_id == staff_id, recovery_codes.c.used_at.is_(None),
        recovery_codes.c.code_hash == _hash(code.strip().lower())).values(used_at=now)).rowcount
    return "recovery" if used else None


def second_step(engine: sa.Engine, who: Staff, code: str, now: datetime | None = None) -> str:
    """Check the code of a staff member whose password was just accepted: ``totp`` or
    ``recovery`` when it is good. A wrong code counts towards the lockout like a wrong password
    (committed before the refusal is raised); the count starts again only here, after both
    steps."""
    now = now or utcnow()
    with engine.begin() as conn:
        row = conn.execute(sa.select(staff.c.failed_logins, staff.c.locked_until,
                                     staff.c.disabled).where(staff.c.id == who.id)).first()
        locked_until = row.locked_until if row is not None else None
        if row is None or row.disabled:
            raise TotpError("bad_totp")
        if locked_until is not None and locked_until > now:
            raise TotpError("totp_locked")
        how = _accept(conn, who.id, code, now)
        if how is not None:
            conn.execute(sa.update(staff).where(staff.c.id == who.id)
                         .values(failed_logins=0, locked_until=None))
            if how == "recovery":
                record(conn, f"staff:{who.id}", "staff.recovery_code", f"staff:{who.id}")
            return how
        count_failure(conn, who.id, now)
    raise TotpError("bad_totp")


def remove(conn: sa.Connection, staff_id: int, actor: str) -> None:
    """Turn the second step off (a lost phone and no recovery code left): the account enrols
    again at its next sign-in if its role requires it."""
    conn.execute(sa.delete(recovery_codes).where(recovery_codes.c.staff_id == staff_id))
    gone = conn.execute(sa.delete(staff_totp).where(staff_totp.c.staff_id == staff_id)).rowcount
    if gone:
        record(conn, actor, "staff.totp_remove", f"staff:{staff_id}")
