"""Wrong passwords and wrong codes add up to one lockout per buyer: MAX_FAILURES in a row lock
the account for LOCKOUT. Each failure is one conditional statement, so wrong attempts racing
in parallel each count; callers count it in a transaction of its own, committed before the
refusal is raised, so that no caller's rollback forgets it."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from cloud.buyers.contacts import mobile_hashes
from cloud.buyers.errors import BuyerError
from cloud.buyers.tables import buyers
from cloud.core.audit import SYSTEM, record

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)


def buyer_by_mobile(conn: sa.Connection, number: str):
    """The account of a normalised number (its row), or None."""
    return conn.execute(sa.select(buyers).where(
        buyers.c.mobile_hash.in_(mobile_hashes(conn, number)))).first()


def refuse_if_locked(row, now: datetime) -> None:
    if row.locked_until is not None and row.locked_until > now:
        raise BuyerError("buyer_locked")


def count_failure(conn: sa.Connection, buyer_id: int, now: datetime) -> bool:
    """One more wrong password or code; at MAX_FAILURES the account is locked for LOCKOUT
    (and the count starts again). True when this failure locked it."""
    failures = conn.execute(sa.update(buyers).where(buyers.c.id == buyer_id)
                            .values(failed_sign_ins=buyers.c.failed_sign_ins + 1)
                            .returning(buyers.c.failed_sign_ins)).scalar()
    if failures is None or failures < MAX_FAILURES:
        return False
    conn.execute(sa.update(buyers).where(buyers.c.id == buyer_id)
                 .values(failed_sign_ins=0, locked_until=now + LOCKOUT))
    record(conn, SYSTEM, "buyer.locked", f"buyer:{buyer_id}")
    return True


def clear_failures(conn: sa.Connection, buyer_id: int) -> None:
    conn.execute(sa.update(buyers).where(buyers.c.id == buyer_id,
                                         sa.or_(buyers.c.failed_sign_ins != 0,
                                                buyers.c.locked_until.is_not(None)))
                 .values(failed_sign_ins=0, locked_until=None))
