"""Messages to send, as rows: a message is written to the outbox in the same transaction as
what caused it (a code asked for, an order paid, a refund done, a verification answered), so
it exists exactly when its cause committed; the messaging area's workers send it.

Every area writes here through :func:`enqueue` (core knows no area, and no area needs the
messaging area to say something); only the messaging area reads, sends and changes the rows
after that. A message's recipient and parameters are personal (a mobile number, a sign-in
code, a name), so both are sealed under the data key (``cloud/core/seal.py``) with the
message's delivery id as associated data; ``to_hash`` (the keyed hash of the address) lets
rate limits and "what did we send to this number" work without opening anything.

``delivery_id`` is the message's own id towards the providers: a worker killed after a send
but before it recorded the send sends again with the same id, and the provider drops the
second. ``dedupe_key`` names the event that caused the message (``order:1234:paid``): a
retried event writes nothing twice.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.core.db import UtcDateTime, metadata
from cloud.core.seal import keyring_for
from sync.timeutil import utcnow

CHANNELS = ("sms", "email", "wechat")
STATES = ("waiting", "sent", "delivered", "failed", "dead")
LANGUAGES = ("zh", "en")
MAX_ATTEMPTS = 6

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("delivery_id", sa.String(40), nullable=False, unique=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("sealed_to", sa.Text, nullable=False),
    sa.Column("to_hash", sa.String(64), nullable=False, index=True),
    sa.Column("sealed_params", sa.Text, nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("dedupe_key", sa.String(160), unique=True),
    sa.Column("task_id", sa.Integer, index=True),
    sa.Column("state", sa.String(10), nullable=False, server_default="waiting"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("run_after", UtcDateTime(), nullable=False),
    sa.Column("taken_by", sa.String(120)),
    sa.Column("taken_until", UtcDateTime()),
    sa.Column("provider_ref", sa.String(120)),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("sent_at", UtcDateTime()),
    sa.Column("finished_at", UtcDateTime()),
    sa.CheckConstraint("channel IN ('sms', 'email', 'wechat')", name="channel_known"),
    sa.CheckConstraint("state IN ('waiting', 'sent', 'delivered', 'failed', 'dead')",
                       name="state_known"),
    sa.CheckConstraint("language IN ('zh', 'en')", name="language_known"),
    sa.CheckConstraint("attempts >= 0 AND max_attempts >= 1", name="attempts_range"),
    sa.Index("ix_outbox_state_run_after", "state", "run_after"),
)


def normalised_address(channel: str, to: str) -> str:
    """The address as it is hashed and sent: e-mail lower-cased, numbers without spaces."""
    to = to.strip()
    return to.lower() if channel == "email" else "".join(to.split())


def address_hash(conn: sa.Connection, channel: str, to: str) -> str:
    """The keyed hash ``to_hash`` holds for an address (current data key)."""
    return keyring_for(conn).doc_hash(f"{channel}:{normalised_address(channel, to)}")


def enqueue(conn: sa.Connection, *, kind: str, channel: str, to: str, params: dict[str, Any],
            language: str = "zh", dedupe_key: str | None = None, task_id: int | None = None,
            now: datetime | None = None) -> int | None:
    """Write a message to send, in the caller's transaction; its id, or None when a message
    with the same ``dedupe_key`` was already written (the event was replayed)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}")
    now = now or utcnow()
    ring = keyring_for(conn)
    delivery_id = secrets.token_hex(16)
    address = normalised_address(channel, to)
    row = {"delivery_id": delivery_id, "kind": kind, "channel": channel,
           "sealed_to": ring.seal(address, f"outbox:{delivery_id}:to"),
           "to_hash": ring.doc_hash(f"{channel}:{address}"),
           "sealed_params": ring.seal(json.dumps(params, sort_keys=True, ensure_ascii=False),
                                      f"outbox:{delivery_id}:params"),
           "language": language, "dedupe_key": dedupe_key, "task_id": task_id,
           "state": "waiting", "attempts": 0, "max_attempts": MAX_ATTEMPTS,
           "run_after": now, "created_at": now}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(outbox).values(row).returning(outbox.c.id)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    return conn.execute(stmt).scalar()


def opened(conn: sa.Connection, row) -> tuple[str, dict[str, Any]]:
    """A message row's address and parameters, opened with the data key."""
    ring = keyring_for(conn)
    to = ring.open(row.sealed_to, f"outbox:{row.delivery_id}:to")
    params = json.loads(ring.open(row.sealed_params, f"outbox:{row.delivery_id}:params"))
    return to, params
