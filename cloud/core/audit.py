"""The hub's audit log: who did what to venues, seats, sessions, tickets, keys, appliances and
staff, with the state before and after, and the network address the request came from. Dotted
action names; no passwords, secrets or unmasked personal data in any field.

The source address is not a parameter of every rule: the web layer sets it for the length of a
request (:func:`set_source`, a context variable, so that rule modules stay free of Flask) and
:func:`record` reads it. Outside a request (the CLI, background work) it is empty.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata
from sync.timeutil import utcnow

# Who did what to venues, seats, sessions, tickets, appliances and staff, with before/after.
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime(), nullable=False, index=True),
    sa.Column("actor", sa.String(80), nullable=False, index=True),
    sa.Column("action", sa.String(80), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("before", sa.JSON),
    sa.Column("after", sa.JSON),
    sa.Column("source", sa.String(64)),
)

SYSTEM = "system"
MAX_SOURCE = 64

_source: ContextVar[str | None] = ContextVar("audit_source", default=None)


def set_source(address: str | None) -> Token:
    """The address the current request came from, for every audit row written while it runs;
    hand the returned token to :func:`reset_source` when the request ends."""
    return _source.set(address[:MAX_SOURCE] if address else None)


def reset_source(token: Token) -> None:
    _source.reset(token)


def audit_source() -> str | None:
    """The address of the request the current audit rows come from, if any."""
    return _source.get()


_INSERT = sa.insert(audit_log)  # its columns are those of the values it is given


def record(conn: sa.Connection, actor: str, action: str, subject: str,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    """One audit row, in the caller's transaction: it commits or rolls back with the change."""
    source = audit_source()
    # the column is named only when there is an address (outside a request there is none), so
    # that the rules still write to a database upgraded only as far as an older revision
    conn.execute(_INSERT, {"at": utcnow(), "actor": actor, "action": action,
                           "subject": subject, "before": before, "after": after,
                           **({"source": source} if source else {})})


def audited_insert(made: sa.CTE, actor: sa.BindParameter, action: str,
                   subject_prefix: str) -> sa.Select:
    """PostgreSQL only (a data-modifying WITH): the row ``made`` (an INSERT … RETURNING id, as
    a CTE) and its audit row in one statement, whose subject is ``subject_prefix`` and the
    new id; the statement returns the id (nothing when ``made`` inserted nothing). Executed
    with :func:`audit_values`."""
    audited = sa.insert(audit_log).from_select(
        ("at", "actor", "action", "subject", "after", "source"), sa.select(
            sa.bindparam("audit_at", type_=audit_log.c.at.type), actor, sa.literal(action),
            sa.literal(subject_prefix) + sa.cast(made.c.id, sa.String),
            sa.bindparam("audit_after", type_=audit_log.c.after.type),
            sa.bindparam("audit_source", type_=audit_log.c.source.type))).cte("audited")
    return sa.select(made.c.id).add_cte(audited)


def audit_values(after: dict[str, Any] | None) -> dict[str, Any]:
    """The audit row's values for :func:`audited_insert`: now, ``after``, the request's
    address."""
    return {"audit_at": utcnow(), "audit_after": after, "audit_source": audit_source()}


def find_audit(conn: sa.Connection, actor: str = "", action: str = "", subject: str = "",
               since: datetime | None = None, until: datetime | None = None,
               limit: int = 50, offset: int = 0) -> list[sa.Row]:
    """Audit rows, newest first: by actor (exact), action (``staff.`` finds every staff
    action; an action name finds itself), subject (exact) and time (``since`` included,
    ``until`` not)."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit).offset(offset)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if action:
        query = query.where(audit_log.c.action == action if not action.endswith(".")
                            else audit_log.c.action.startswith(action, autoescape=True))
    if subject:
        query = query.where(audit_log.c.subject == subject)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if until is not None:
        query = query.where(audit_log.c.at < until)
    return conn.execute(query).all()
