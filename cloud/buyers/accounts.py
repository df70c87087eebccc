"""Buyer accounts: registration with an SMS code, sign-in by code or password, the password
(set, changed, reset by SMS), the e-mail address, the profile.

Passwords are the staff's: the same scrypt hash and the same strength policy (zxcvbn, with the
mobile number as the word an attacker tries first; cloud/staff/staff.py, sync/passwords.py).
Sign-in by password takes exactly one hash whatever the account's state, and the refusal does
not say whether the number has an account. The functions that check a code or a password take
the engine: the failure they count commits before they refuse (cloud/buyers/lockout.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.buyers import codes, sessions
from cloud.buyers.contacts import (
    email_hash,
    mask_email,
    mask_mobile,
    mobile_hash,
    mobile_hashes,
    normalize_email,
    normalize_mobile,
)
from cloud.buyers.errors import BuyerError
from cloud.buyers.identities import identity_state
from cloud.buyers.lockout import buyer_by_mobile, clear_failures, count_failure, refuse_if_locked
from cloud.buyers.tables import buyers
from cloud.core.audit import record
from cloud.core.seal import Keyring, keyring_for
from cloud.staff.staff import DUMMY_HASH, check_password, hash_password
from sync.passwords import Policy, WeakPassword, check_strength
from sync.timeutil import utcnow

# words an attacker tries first on a buyer's password, besides the mobile number
BUYER_WORDS = ("buyer", "wicket", "tickets", "password")
POLICY = Policy()


@dataclass(frozen=True)
class Profile:
    """A buyer's account as the buyer sees it (in full), or as staff do (:meth:`masked`)."""

    id: int
    mobile: str
    email: str | None
    language: str
    state: str
    has_password: bool
    identity_id: int | None
    created_at: datetime
    verification: str | None = None  # the state of the buyer's own identity, if named

    def masked(self) -> Profile:
        return Profile(self.id, mask_mobile(self.mobile),
                       mask_email(self.email) if self.email else None, self.language,
                       self.state, self.has_password, self.identity_id, self.created_at,
                       self.verification)


def _language(language: object) -> str:
    if language not in codes.LANGUAGES:
        raise BuyerError("bad_language")
    return language  # type: ignore[return-value]


def _check_password(password: object, number: str) -> str:
    if not isinstance(password, str):
        raise BuyerError("bad_field", field="password")
    try:
        check_strength(password, number, POLICY, BUYER_WORDS)
    except WeakPassword as e:
        raise BuyerError(e.code, **e.params) from None
    return password


def check_new_password(mobile: str, password: object) -> None:
    """Refuse a password the policy would refuse for this number, before anything is spent."""
    _check_password(password, normalize_mobile(mobile))


def _sealed_email(conn: sa.Connection, address: str | None) -> dict:
    if address is None:
        return {"email_hash": None, "sealed_email": None}
    hashed = email_hash(conn, address)
    return {"email_hash": hashed,
            "sealed_email": keyring_for(conn).seal(address, f"buyers:email:{hashed}")}


def register(conn: sa.Connection, *, mobile: str, code: str, password: str | None = None,
             email: str | None = None, language: str = "zh",
             now: datetime | None = None) -> int:
    """A new account for the holder of a register code (checked first by
    :func:`codes.check_code`, spent here); its id. ``mobile_taken`` when the number has one."""
    number = normalize_mobile(mobile)
    language = _language(language)
    address = normalize_email(email) if email is not None else None
    if password is not None:
        _check_password(password, number)
    now = now or utcnow()
    codes.use_code(conn, number=number, purpose="register", code=code, now=now)
    if buyer_by_mobile(conn, number) is not None:
        raise BuyerError("mobile_taken")
    hashed = mobile_hash(conn, number)
    buyer_id = conn.execute(sa.insert(buyers).values(
        mobile_hash=hashed,
        sealed_mobile=keyring_for(conn).seal(number, f"buyers:mobile:{hashed}"),
        **_sealed_email(conn, address),
        password_hash=hash_password(password) if password is not None else None,
        password_changed_at=now if password is not None else None,
        language=language, state="active", created_at=now)).inserted_primary_key[0]
    record(conn, f"buyer:{buyer_id}", "buyer.register", f"buyer:{buyer_id}", None,
           {"mobile": mask_mobile(number), "language": language})
    return buyer_id


def sign_in_by_code(engine: sa.Engine, *, mobile: str, code: str, user_agent: str | None = None,
                    address: str | None = None, now: datetime | None = None) -> tuple[int, str]:
    """Sign in with a sign-in code: the buyer's id and a new session's token."""
    now = now or utcnow()
    number = codes.check_code(engine, mobile=mobile, purpose="sign_in", code=code, now=now)
    with engine.begin() as conn:
        codes.use_code(conn, number=number, purpose="sign_in", code=code, now=now)
        account = buyer_by_mobile(conn, number)
        if account is None or account.state != "active":
            raise BuyerError("bad_code")
        refuse_if_locked(account, now)
        clear_failures(conn, account.id)
        return account.id, sessions.start_session(conn, account.id, user_agent=user_agent,
                                                  address=address, now=now)


def sign_in_by_password(engine: sa.Engine, *, mobile: str, password: str,
                        user_agent: str | None = None, address: str | None = None,
                        now: datetime | None = None) -> tuple[int, str]:
    """Sign in with the password: the buyer's id and a new session's token; ``bad_sign_in``
    for a wrong password, an unknown number, a disabled account or one with no password."""
    if not isinstance(password, str):
        raise BuyerError("bad_field", field="password")
    number = normalize_mobile(mobile)
    now = now or utcnow()
    with engine.begin() as conn:
        account = buyer_by_mobile(conn, number)
        stored = account.password_hash if account is not None else None
        ok = check_password(password, stored or DUMMY_HASH) and stored is not None
        if account is None or account.state != "active":
            ok = False
        elif account.locked_until is not None and account.locked_until > now:
            raise BuyerError("buyer_locked")
        elif not ok:
            count_failure(conn, account.id, now)
    if not ok:
        raise BuyerError("bad_sign_in")
    with engine.begin() as conn:
        clear_failures(conn, account.id)
        return account.id, sessions.start_session(conn, account.id, user_agent=user_agent,
                                                  address=address, now=now)


def _number_of(conn: sa.Connection, buyer_id: int) -> tuple[str, str | None]:
    row = conn.execute(sa.select(buyers.c.mobile_hash, buyers.c.sealed_mobile,
                                 buyers.c.password_hash).where(buyers.c.id == buyer_id)).first()
    if row is None:
        raise BuyerError("bad_session")
    return (keyring_for(conn).open(row.sealed_mobile, f"buyers:mobile:{row.mobile_hash}"),
            row.password_hash)


def set_password(conn: sa.Connection, buyer_id: int, new: str, *, current: str | None = None,
                 session_id: int | None = None, now: datetime | None = None) -> int:
    """Set the first password, or change it (``current`` must then be right); the buyer's
    other sessions end. How many sessions were ended."""
    now = now or utcnow()
    number, stored = _number_of(conn, buyer_id)
    _check_password(new, number)
    if stored is not None and (not isinstance(current, str)
                               or not check_password(current, stored)):
        raise BuyerError("wrong_password")
    conn.execute(sa.update(buyers).where(buyers.c.id == buyer_id).values(
        password_hash=hash_password(new), password_changed_at=now))
    ended = sessions.end_sessions(conn, buyer_id, keep=session_id, now=now)
    record(conn, f"buyer:{buyer_id}", "buyer.password", f"buyer:{buyer_id}", None,
           {"sessions_ended": ended})
    return ended


def reset_password(conn: sa.Connection, *, mobile: str, code: str, new: str,
                   now: datetime | None = None) -> int:
    """A new password chosen with a password_reset code (checked first by
    :func:`codes.check_code`, spent here): every session of the account ends and a lockout is
    lifted. The buyer's id."""
    number = normalize_mobile(mobile)
    _check_password(new, number)
    now = now or utcnow()
    codes.use_code(conn, number=number, purpose="password_reset", code=code, now=now)
    account = buyer_by_mobile(conn, number)
    if account is None or account.state != "active":
        raise BuyerError("bad_code")
    conn.execute(sa.update(buyers).where(buyers.c.id == account.id).values(
        password_hash=hash_password(new), password_changed_at=now, failed_sign_ins=0,
        locked_until=None))
    ended = sessions.end_sessions(conn, account.id, now=now)
    record(conn, f"buyer:{account.id}", "buyer.password_reset", f"buyer:{account.id}", None,
           {"sessions_ended": ended})
    return account.id


def set_email(conn: sa.Connection, buyer_id: int, email: str | None) -> None:
    """Give, change or (None) remove the buyer's e-mail address."""
    address = normalize_email(email) if email is not None else None
    conn.execute(sa.update(buyers).where(buyers.c.id == buyer_id)
                 .values(**_sealed_email(conn, address)))
    record(conn, f"buyer:{buyer_id}", "buyer.email", f"buyer:{buyer_id}", None,
           {"email": mask_email(address) if address else None})


def set_language(conn: sa.Connection, buyer_id: int, language: str) -> None:
    conn.execute(sa.update(buyers).where(buyers.c.id == buyer_id)
                 .values(language=_language(language)))


def opened_contacts(ring: Keyring, row) -> tuple[str, str | None]:
    """A buyer row's mobile number and e-mail address (or None), opened."""
    email = (ring.open(row.sealed_email, f"buyers:email:{row.email_hash}")
             if row.sealed_email else None)
    return ring.open(row.sealed_mobile, f"buyers:mobile:{row.mobile_hash}"), email


def _profile(conn: sa.Connection, row) -> Profile:
    mobile, email = opened_contacts(keyring_for(conn), row)
    return Profile(row.id, mobile, email, row.language, row.state, row.password_hash is not None,
                   row.identity_id, row.created_at,
                   identity_state(conn, row.identity_id) if row.identity_id else None)


def profile(conn: sa.Connection, buyer_id: int) -> Profile:
    """A buyer's account opened (show it in full only to the buyer: :meth:`Profile.masked`)."""
    row = conn.execute(sa.select(buyers).where(buyers.c.id == buyer_id)).first()
    if row is None:
        raise BuyerError("bad_session")
    return _profile(conn, row)


def list_buyers(conn: sa.Connection, *, mobile: str | None = None, limit: int = 50,
                offset: int = 0) -> list[tuple[Profile, int]]:
    """Accounts, newest first, masked, each with its number of live companions (for customer
    service); only the account of ``mobile`` when one is given (``bad_mobile`` for a number
    that is not one)."""
    query = sa.select(buyers).order_by(buyers.c.id.desc()).limit(limit).offset(offset)
    if mobile is not None:
        query = query.where(buyers.c.mobile_hash.in_(mobile_hashes(conn,
                                                                   normalize_mobile(mobile))))
    return [(_profile(conn, r).masked(), r.live_companions) for r in conn.execute(query).all()]
