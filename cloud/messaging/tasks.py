"""Send tasks: staff write one message to a list of recipients (a gate change to everyone
holding a ticket for a session, for instance). A task is a row and one outbox message per
recipient, written in one transaction; its progress is counted from its messages.

The task takes recipients: who holds a ticket for a session is known by addresses the buyers'
part keeps, and whoever knows them builds the list. The task page's "all holders of a session"
gets it from the buyers' function the app hands over (``cloud/messaging/audiences.py``); the
task then records its audience in its title and audit record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.core import audit
from cloud.core.outbox import CHANNELS, enqueue, normalised_address, outbox
from cloud.messaging.errors import MessagingError
from cloud.messaging.rendering import PARAMS, check_kind
from cloud.messaging.tables import send_tasks
from sync.timeutil import utcnow

MAX_RECIPIENTS = 5000
MAX_TITLE = 200
_MOBILE = re.compile(r"^\+?[0-9]{6,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def valid_recipient(channel: str, to: str) -> bool:
    address = normalised_address(channel, to)
    if channel == "sms":
        return bool(_MOBILE.match(address))
    if channel == "email":
        return bool(_EMAIL.match(address)) and len(address) <= 254
    return 0 < len(address) <= 64 and address.isprintable()


def create_task(conn: sa.Connection, *, kind: str, recipients: list[str],
                params: dict[str, Any], channel: str = "sms", language: str = "zh",
                title: str = "", actor: str = "system", now: datetime | None = None,
                audience: str | None = None) -> int:
    """A task and its messages, in the caller's transaction (audited); its id. Recipients
    named twice get one message; the parameters must be the kind's (``rendering.PARAMS``).
    ``audience`` (``session_holders:12``) says whom the recipients were found as: it ends the
    title and is in the audit record."""
    check_kind(kind)
    if channel not in CHANNELS:
        raise MessagingError("bad_recipient", recipient=channel)
    unique = list(dict.fromkeys(normalised_address(channel, r) for r in recipients
                                if r.strip()))
    if not 1 <= len(unique) <= MAX_RECIPIENTS:
        raise MessagingError("no_recipients", limit=MAX_RECIPIENTS)
    bad = [r for r in unique if not valid_recipient(channel, r)]
    if bad:
        raise MessagingError("bad_recipient", recipient=bad[0])
    missing = [p for p in PARAMS[kind] if not str(params.get(p, "")).strip()]
    if missing:
        raise MessagingError("missing_message_parameter", kind=kind, name=missing[0])
    now = now or utcnow()
    task_id = conn.execute(sa.insert(send_tasks).values(
        kind=kind, channel=channel, title=_title(title.strip() or kind, audience),
        recipients=len(unique), created_by=actor, created_at=now)
        .returning(send_tasks.c.id)).scalar_one()
    values = {p: params[p] for p in PARAMS[kind]}
    for to in unique:
        enqueue(conn, kind=kind, channel=channel, to=to, params=values, language=language,
                task_id=task_id, dedupe_key=f"task:{task_id}:{to}"[:160], now=now)
    audit.record(conn, actor, "messages.task", f"task:{task_id}", None,
                 {"kind": kind, "channel": channel, "recipients": len(unique),
                  **({"audience": audience} if audience else {})})
    return task_id


def _title(title: str, audience: str | None) -> str:
    if not audience:
        return title[:MAX_TITLE]
    mark = f" · {audience}"
    return title[:MAX_TITLE - len(mark)] + mark


@dataclass(frozen=True)
class Progress:
    id: int
    title: str
    kind: str
    channel: str
    recipients: int
    created_by: str
    created_at: datetime
    waiting: int
    sent: int        # taken by the provider, no receipt yet
    delivered: int
    failed: int      # refused, failed by receipt, or dead after its last attempt

    @property
    def done(self) -> int:
        return self.delivered + self.failed


def _progress(row, states: dict[str, int]) -> Progress:
    return Progress(row.id, row.title, row.kind, row.channel, row.recipients, row.created_by,
                    row.created_at, states.get("waiting", 0), states.get("sent", 0),
                    states.get("delivered", 0),
                    states.get("failed", 0) + states.get("dead", 0))


def task_progress(conn: sa.Connection, task_id: int) -> Progress | None:
    row = conn.execute(sa.select(send_tasks).where(send_tasks.c.id == task_id)).first()
    if row is None:
        return None
    states = dict(conn.execute(sa.select(outbox.c.state, sa.func.count())
                               .where(outbox.c.task_id == task_id)
                               .group_by(outbox.c.state)).all())
    return _progress(row, states)


def tasks_progress(conn: sa.Connection, limit: int = 50) -> list[Progress]:
    """The latest tasks, newest first, with their counts."""
    rows = conn.execute(sa.select(send_tasks).order_by(send_tasks.c.id.desc())
                        .limit(limit)).all()
    counts: dict[int, dict[str, int]] = {}
    if rows:
        for task_id, state, n in conn.execute(
                sa.select(outbox.c.task_id, outbox.c.state, sa.func.count())
                .where(outbox.c.task_id.in_([r.id for r in rows]))
                .group_by(outbox.c.task_id, outbox.c.state)):
            counts.setdefault(task_id, {})[state] = n
    return [_progress(r, counts.get(r.id, {})) for r in rows]
