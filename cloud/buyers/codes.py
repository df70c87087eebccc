"""One-time codes sent by SMS: asked for, checked, used once.

Asking for a code is limited per client address and per number (counters in the hub's
database, ``cloud/core/rate_limits.py``), and a number gets a new code for a purpose no sooner
than RESEND_AFTER after the last; all three are counted whether or not the number has an
account, and the answer is the same either way, so that nobody learns which numbers are
registered. A code lives CODE_LIFETIME, only its keyed hash is stored, and a newer code for the
same number and purpose replaces the older. A message goes out through the outbox
(``cloud/core/outbox.py``) in the transaction that made the code.

Using a code takes two steps. :func:`check_code` runs in a transaction of its own (it takes the
engine): a wrong code is counted on the code (MAX_ATTEMPTS and it is dead) and on the account
(cloud/buyers/lockout.py), and that count is committed before the refusal. :func:`use_code`
then spends the code in the caller's transaction, with a conditional UPDATE, so that of two
requests carrying the same code one only succeeds.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from cloud.buyers.contacts import mobile_hash, mobile_hashes, normalize_mobile
from cloud.buyers.errors import BuyerError
from cloud.buyers.lockout import buyer_by_mobile, count_failure, refuse_if_locked
from cloud.buyers.tables import CODE_PURPOSES, buyer_codes
from cloud.core import rate_limits
from cloud.core.outbox import enqueue
from cloud.core.seal import keyring_for
from sync.timeutil import utcnow

CODE_LIFETIME = timedelta(minutes=5)
RESEND_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 5
LANGUAGES = ("zh", "en")
# the outbox kind of each purpose's message (the messaging area's templates know them)
KINDS = {"register": "register_code", "sign_in": "sign_in_code",
         "password_reset": "password_reset_code"}
_CODE = re.compile(r"\d{6}")


@dataclass(frozen=True)
class CodeLimits:
    """How many codes one number, and one client address, may be sent per window."""

    per_number: int = 5
    per_address: int = 20
    window: timedelta = timedelta(hours=1)


def _code_hash(conn: sa.Connection, purpose: str, number: str, code: str) -> str:
    return keyring_for(conn).doc_hash(f"code:{purpose}:{number}:{code}")


def _count(conn: sa.Connection, key: str, limit: int, window: timedelta, now: datetime) -> None:
    if rate_limits.hit(conn, key, window, now) > limit:
        raise BuyerError("code_rate_limited")


def ask_code(conn: sa.Connection, *, mobile: str, purpose: str, address: str | None,
             language: str = "zh", limits: CodeLimits = CodeLimits(),
             now: datetime | None = None) -> None:
    """Send a code for ``purpose`` to ``mobile`` (asked from client ``address``), within the
    limits. It is sent to register whatever the number's state (an account already there is
    told at registration, to the holder of the code only), to sign in or reset a password only
    to an active account; the caller's answer is the same in every case."""
    number = normalize_mobile(mobile)
    if purpose not in CODE_PURPOSES:
        raise BuyerError("bad_purpose")
    if language not in LANGUAGES:
        raise BuyerError("bad_language")
    now = now or utcnow()
    hashed = mobile_hash(conn, number)
    _count(conn, f"buyer_code:address:{address or '-'}", limits.per_address, limits.window, now)
    _count(conn, f"buyer_code:mobile:{hashed}", limits.per_number, limits.window, now)
    if rate_limits.hit(conn, f"buyer_code:resend:{purpose}:{hashed}", RESEND_AFTER, now) > 1:
        raise BuyerError("code_too_soon", seconds=int(RESEND_AFTER.total_seconds()))
    account = buyer_by_mobile(conn, number)
    if purpose != "register" and (account is None or account.state != "active"):
        return
    if account is not None:
        language = account.language
    conn.execute(sa.update(buyer_codes).where(
        buyer_codes.c.mobile_hash.in_(mobile_hashes(conn, number)),
        buyer_codes.c.purpose == purpose, buyer_codes.c.used_at.is_(None)).values(used_at=now))
    code = f"{secrets.randbelow(10**6):06d}"
    conn.execute(sa.insert(buyer_codes).values(
        mobile_hash=hashed, purpose=purpose, code_hash=_code_hash(conn, purpose, number, code),
        created_at=now, expires_at=now + CODE_LIFETIME, attempts=0))
    enqueue(conn, kind=KINDS[purpose], channel="sms", to=number, language=language,
            params={"code": code, "minutes": int(CODE_LIFETIME.total_seconds() // 60)}, now=now)


def _live(conn: sa.Connection, number: str, purpose: str, now: datetime):
    return conn.execute(sa.select(buyer_codes).where(
        buyer_codes.c.mobile_hash.in_(mobile_hashes(conn, number)),
        buyer_codes.c.purpose == purpose, buyer_codes.c.used_at.is_(None),
        buyer_codes.c.expires_at > now, buyer_codes.c.attempts < MAX_ATTEMPTS)
        .order_by(buyer_codes.c.id.desc()).limit(1)).first()


def check_code(engine: sa.Engine, *, mobile: str, purpose: str, code: str,
               now: datetime | None = None) -> str:
    """Whether ``code`` is the live code of ``mobile`` for ``purpose``: the normalised number,
    or ``bad_code`` (wrong, used, expired, never sent, unknown number) after the failure was
    counted and committed; ``buyer_locked`` to sign in to a locked account."""
    number = normalize_mobile(mobile)
    if purpose not in CODE_PURPOSES:
        raise BuyerError("bad_purpose")
    if not isinstance(code, str) or _CODE.fullmatch(code) is None:
        raise BuyerError("bad_field", field="code")
    now = now or utcnow()
    with engine.begin() as conn:
        account = buyer_by_mobile(conn, number)
        if account is not None and purpose == "sign_in":
            refuse_if_locked(account, now)
        row = _live(conn, number, purpose, now)
        ok = row is not None and hmac.compare_digest(
            row.code_hash, _code_hash(conn, purpose, number, code))
        if not ok:
            if row is not None:
                conn.execute(sa.update(buyer_codes).where(buyer_codes.c.id == row.id)
                             .values(attempts=buyer_codes.c.attempts + 1))
            if account is not None:
                count_failure(conn, account.id, now)
    if not ok:
        raise BuyerError("bad_code")
    return number


def use_code(conn: sa.Connection, *, number: str, purpose: str, code: str,
             now: datetime) -> None:
    """Spend the live code of a normalised number for ``purpose`` in the caller's transaction,
    or ``bad_code`` (someone else spent it first, or it is not the code)."""
    spent = conn.execute(sa.update(buyer_codes).where(
        buyer_codes.c.mobile_hash.in_(mobile_hashes(conn, number)),
        buyer_codes.c.purpose == purpose, buyer_codes.c.used_at.is_(None),
        buyer_codes.c.expires_at > now, buyer_codes.c.attempts < MAX_ATTEMPTS,
        buyer_codes.c.code_hash == _code_hash(conn, purpose, number, code))
        .values(used_at=now)).rowcount
    if not spent:
        raise BuyerError("bad_code")


KEEP_SPENT = timedelta(days=1)


def tidy_codes(conn: sa.Connection, now: datetime) -> int:
    """Forget codes that expired more than KEEP_SPENT ago (a periodic task of the worker);
    how many."""
    return conn.execute(sa.delete(buyer_codes).where(
        buyer_codes.c.expires_at < now - KEEP_SPENT)).rowcount
