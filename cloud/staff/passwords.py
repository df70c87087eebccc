"""Choosing and changing hub staff passwords under the shared policy (sync/passwords.py).

The policy's settings come from the app's configuration (:func:`policy_from`); every new
password passes the strength check, and one of the account's last ``history`` passwords is
refused. A password set by an administrator is marked as not chosen by its holder, who must
choose their own at the next sign-in, as must the holder of a password older than the
maximum age.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa

from cloud.core.audit import record
from cloud.staff.staff import (
    HUB_POLICY,
    StaffError,
    check_password,
    check_policy,
    hash_password,
    remember_password,
)
from cloud.staff.tables import password_history, staff
from sync.passwords import Policy, WeakPassword, check_not_reused, expired
from sync.timeutil import utcnow


def policy_from(config: Mapping) -> Policy:
    """The hub's policy from its settings: PASSWORD_MIN_SCORE, PASSWORD_MAX_AGE_DAYS,
    PASSWORD_HISTORY ($WICKET_HUB_PASSWORD_…), each defaulting to :data:`HUB_POLICY`'s."""
    return Policy(min_score=int(config.get("PASSWORD_MIN_SCORE", HUB_POLICY.min_score)),
                  max_age_days=int(config.get("PASSWORD_MAX_AGE_DAYS",
                                              HUB_POLICY.max_age_days)),
                  history=int(config.get("PASSWORD_HISTORY", HUB_POLICY.history)))


def _recent(conn: sa.Connection, staff_id: int) -> list[str]:
    return list(conn.execute(sa.select(password_history.c.password_hash)
                             .where(password_history.c.staff_id == staff_id)
                             .order_by(password_history.c.id.desc())).scalars())


def _account(conn: sa.Connection, staff_id: int):
    row = conn.execute(sa.select(staff.c.username, staff.c.password_hash)
                       .where(staff.c.id == staff_id)).first()
    if row is None:
        raise StaffError("unknown_staff", staff_id=staff_id)
    return row


def _store(conn: sa.Connection, staff_id: int, username: str, new: str, policy: Policy,
           chosen: bool, now: datetime) -> None:
    check_policy(new, username, policy)
    try:
        check_not_reused(new, _recent(conn, staff_id), check_password, policy)
    except WeakPassword as e:
        raise StaffError(e.code, **e.params) from None
    hashed = hash_password(new)
    conn.execute(sa.update(staff).where(staff.c.id == staff_id).values(
        password_hash=hashed, password_changed_at=now if chosen else None))
    remember_password(conn, staff_id, hashed, now)


def renew_password(conn: sa.Connection, staff_id: int, new: str, policy: Policy = HUB_POLICY,
                   now: datetime | None = None) -> None:
    """The holder's new password at sign-in, after both steps, when :func:`must_change` said
    so (the password just given stands for the current one)."""
    now = now or utcnow()
    row = _account(conn, staff_id)
    _store(conn, staff_id, row.username, new, policy, True, now)
    record(conn, f"staff:{staff_id}", "staff.password", f"staff:{staff_id}")


def must_change(conn: sa.Connection, staff_id: int, policy: Policy = HUB_POLICY,
                now: datetime | None = None) -> bool:
    """Whether the account must choose a new password before anything else."""
    changed_at = conn.execute(sa.select(staff.c.password_changed_at)
                              .where(staff.c.id == staff_id)).scalar_one_or_none()
    return expired(changed_at, now or utcnow(), policy)
