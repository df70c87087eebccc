"""The hub's audit log: who did what to venues, seats, sessions, tickets, keys, appliances and
staff, with the state before and after. Dotted action names; no passwords, secrets or
unmasked personal data in any field."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cloud.core.db import audit_log
from sync.timeutil import utcnow

SYSTEM = "system"


def record(conn: sa.Connection, actor: str, action: str, subject: str,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    """One audit row, in the caller's transaction: it commits or rolls back with the change."""
    conn.execute(sa.insert(audit_log).values(at=utcnow(), actor=actor, action=action,
                                             subject=subject, before=before, after=after))
