"""The hub's audit log: who did what to venues, seats, sessions, tickets, keys, appliances and
staff, with the state before and after. Dotted action names; no passwords, secrets or
unmasked personal data in any field."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata
from sync.timeutil import utcnow

# Who did what to venues, seats, sessions, tickets, appliances and staff, with before/after.
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime(), nullable=False, index=True),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("action", sa.String(80), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("before", sa.JSON),
    sa.Column("after", sa.JSON),
)

SYSTEM = "system"


def record(conn: sa.Connection, actor: str, action: str, subject: str,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    """One audit row, in the caller's transaction: it commits or rolls back with the change."""
    conn.execute(sa.insert(audit_log).values(at=utcnow(), actor=actor, action=action,
                                             subject=subject, before=before, after=after))
