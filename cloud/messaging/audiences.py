"""Send tasks to an audience instead of a typed list: "all holders of a session".

Who holds a ticket for a session is known by addresses the buyers area keeps, and messaging
may not import buyers. So the audience's recipients come from a function that area provides,
handed over by the app's composer (``cloud/app.py``: ``Audiences`` in
``app.extensions["message_audiences"]``); without one the task page offers only the typed
list. A task written to an audience records which (``session_holders:<session id>``) in its
title and its audit record; its messages are then those of any task
(``cloud/messaging/tasks.py``), the addresses being the provider's at that moment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.catalog.tables import events, sessions, venues
from cloud.core.outbox import CHANNELS
from cloud.messaging.errors import MessagingError
from cloud.messaging.tasks import create_task

# (connection, the audience's argument: a session's id, channel) -> the addresses
Recipients = Callable[[sa.Connection, int, str], list[str]]
SESSION_HOLDERS = "session_holders"
AUDIENCES = (SESSION_HOLDERS,)  # the audiences the task page knows how to offer


@dataclass
class Audiences:
    """The audiences an app offers, each with the function that names its recipients."""

    providers: dict[str, Recipients] = field(default_factory=dict)

    def provide(self, name: str, recipients: Recipients) -> None:
        if name not in AUDIENCES:
            raise ValueError(f"unknown audience {name!r}: one of {', '.join(AUDIENCES)}")
        self.providers[name] = recipients

    def offers(self, name: str) -> bool:
        return name in self.providers


@dataclass(frozen=True)
class SessionChoice:
    id: int
    name: str
    event: str
    starts_at: datetime
    timezone: str
    state: str


def session_choices(conn: sa.Connection, limit: int = 500) -> list[SessionChoice]:
    """The sessions a task may be sent to the holders of, the latest first."""
    rows = conn.execute(sa.select(sessions.c.id, sessions.c.name, events.c.name.label("event"),
                                  sessions.c.starts_at, venues.c.timezone, sessions.c.state)
                        .join(events, events.c.id == sessions.c.event_id)
                        .join(venues, venues.c.id == sessions.c.venue_id)
                        .order_by(sessions.c.starts_at.desc(), sessions.c.id.desc())
                        .limit(limit)).all()
    return [SessionChoice(r.id, r.name, r.event, r.starts_at, r.timezone, r.state)
            for r in rows]


def audience_task(conn: sa.Connection, audiences: Audiences, name: str, argument: int, *,
                  kind: str, params: dict[str, Any], channel: str = "sms",
                  language: str = "zh", title: str = "", actor: str = "system",
                  now: datetime | None = None) -> int:
    """A task to everyone in the audience ``name`` of ``argument`` (a session's id), in the
    caller's transaction; its id. ``unknown_audience`` if the app offers no such audience,
    ``unknown_session`` for a session that is not there, ``empty_audience`` when nobody in it
    has an address on the channel."""
    provider = audiences.providers.get(name)
    if provider is None:
        raise MessagingError("unknown_audience", audience=name)
    if channel not in CHANNELS:
        raise MessagingError("bad_recipient", recipient=channel)
    if conn.execute(sa.select(sessions.c.id).where(sessions.c.id == argument)).first() is None:
        raise MessagingError("unknown_session", session_id=argument)
    recipients = provider(conn, argument, channel)
    audience = f"{name}:{argument}"
    if not recipients:
        raise MessagingError("empty_audience", audience=audience, channel=channel)
    return create_task(conn, kind=kind, recipients=recipients, params=params, channel=channel,
                       language=language, title=title, actor=actor, now=now,
                       audience=audience)
