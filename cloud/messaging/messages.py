"""The outbox as staff see it: messages with their recipients masked, filtered by state,
channel, kind or task; and resending a failed or dead message (audited)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.core import audit
from cloud.core.outbox import STATES, opened, outbox, requeue
from cloud.messaging.errors import MessagingError
from sync.timeutil import utcnow

PAGE = 50


def mask_address(channel: str, to: str) -> str:
    """A recipient as staff see it: 138****8000, b***@example.com, an openid's ends."""
    if channel == "email" and "@" in to:
        local, domain = to.split("@", 1)
        return f"{local[:1]}***@{domain}"
    if len(to) <= 6:
        return "*" * len(to)
    return f"{to[:3]}{'*' * (len(to) - 7)}{to[-4:]}"


@dataclass(frozen=True)
class Listed:
    id: int
    kind: str
    channel: str
    to: str          # masked
    language: str
    state: str
    attempts: int
    max_attempts: int
    last_error: str | None
    task_id: int | None
    created_at: datetime
    sent_at: datetime | None
    finished_at: datetime | None

    @property
    def resendable(self) -> bool:
        return self.state in ("failed", "dead")


def list_messages(conn: sa.Connection, *, state: str | None = None, channel: str | None = None,
                  kind: str | None = None, task_id: int | None = None, before: int | None = None,
                  limit: int = PAGE) -> list[Listed]:
    """The newest messages first (``before``: only ids below it, for the next page)."""
    q = sa.select(outbox).order_by(outbox.c.id.desc()).limit(limit)
    for column, value in ((outbox.c.state, state), (outbox.c.channel, channel),
                          (outbox.c.kind, kind), (outbox.c.task_id, task_id)):
        if value is not None:
            q = q.where(column == value)
    if before is not None:
        q = q.where(outbox.c.id < before)
    out = []
    for r in conn.execute(q):
        to, _params = opened(conn, r)
        out.append(Listed(r.id, r.kind, r.channel, mask_address(r.channel, to), r.language,
                          r.state, r.attempts, r.max_attempts, r.last_error, r.task_id,
                          r.created_at, r.sent_at, r.finished_at))
    return out


def counts(conn: sa.Connection) -> dict[str, int]:
    found = dict(conn.execute(sa.select(outbox.c.state, sa.func.count())
                              .group_by(outbox.c.state)).all())
    return {s: found.get(s, 0) for s in STATES}


def resend(conn: sa.Connection, message_id: int, actor: str,
           now: datetime | None = None) -> None:
    """Send a failed or dead message again, as a new delivery (audited)."""
    row = conn.execute(sa.select(outbox.c.state, outbox.c.delivery_id)
                       .where(outbox.c.id == message_id)).first()
    if row is None:
        raise MessagingError("unknown_message", message_id=message_id)
    new = requeue(conn, message_id, now or utcnow())
    if new is None:
        raise MessagingError("not_resendable", message_id=message_id, state=row.state)
    audit.record(conn, actor, "messages.resend", f"message:{message_id}",
                 {"state": row.state, "delivery_id": row.delivery_id},
                 {"state": "waiting", "delivery_id": new})
