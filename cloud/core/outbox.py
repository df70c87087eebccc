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
from dataclasses import dataclass
from datetime import datetime, timedelta
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


# -- the outbox's states, changed only by the messaging area through these ------------------
# (the table is core's so that every area can enqueue; its state machine lives beside it, as
# the jobs' does, and the messaging area's workers, receipts and pages call it)

LEASE = timedelta(minutes=2)
BACKOFF_BASE = timedelta(seconds=5)
BACKOFF_CAP = timedelta(hours=1)


@dataclass(frozen=True)
class Taken:
    """A message a worker has claimed: its lease is ``(taken_by, attempts)``."""

    id: int
    delivery_id: str
    kind: str
    channel: str
    sealed_to: str
    sealed_params: str
    language: str
    attempts: int
    max_attempts: int
    taken_by: str


def backoff(attempts: int) -> timedelta:
    """How long a message waits after its ``attempts``-th failed send: 5 s, 10 s, 20 s ...
    at most an hour."""
    return min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(0, attempts - 1)))


def _claimable(now: datetime, channels: list[str]) -> list[sa.ColumnElement[bool]]:
    return [outbox.c.state == "waiting", outbox.c.run_after <= now,
            outbox.c.channel.in_(channels),
            sa.or_(outbox.c.taken_until.is_(None), outbox.c.taken_until <= now)]


def claim(conn: sa.Connection, worker: str, *, now: datetime | None = None,
          lease: timedelta = LEASE, limit: int = 50,
          channels: list[str] | tuple[str, ...] = CHANNELS) -> list[Taken]:
    """Take up to ``limit`` due messages for ``worker``, oldest first, with a lease; the
    caller commits right after (the lease is then seen by every other worker). On PostgreSQL
    the rows are picked ``FOR UPDATE SKIP LOCKED``: workers take disjoint batches without
    waiting on each other; on SQLite the conditional UPDATE does it (one writer at a time).
    A message whose last attempt's lease passed is dead instead (its worker died each time)."""
    now = now or utcnow()
    channels = list(channels)
    conn.execute(sa.update(outbox).where(
        *_claimable(now, channels), outbox.c.taken_until.is_not(None),
        outbox.c.attempts >= outbox.c.max_attempts).values(
        state="dead", taken_by=None, taken_until=None, finished_at=now,
        last_error=sa.func.coalesce(outbox.c.last_error, "") + " (the worker was lost)"))
    due = (sa.select(outbox.c.id).where(*_claimable(now, channels))
           .order_by(outbox.c.run_after, outbox.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        # materialised, so the planner runs the LIMIT once (see cloud/core/jobs.py claim)
        cte = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        taken = outbox.c.id.in_(sa.select(cte.c.id))
    else:
        taken = outbox.c.id.in_(due.scalar_subquery())
    c = outbox.c
    rows = conn.execute(sa.update(outbox).where(taken, *_claimable(now, channels)).values(
        attempts=c.attempts + 1, taken_by=worker, taken_until=now + lease).returning(
        c.id, c.delivery_id, c.kind, c.channel, c.sealed_to, c.sealed_params, c.language,
        c.attempts, c.max_attempts)).all()
    return sorted((Taken(r.id, r.delivery_id, r.kind, r.channel, r.sealed_to,
                         r.sealed_params, r.language, r.attempts, r.max_attempts, worker)
                   for r in rows), key=lambda t: t.id)


@dataclass(frozen=True)
class Outcome:
    """What became of one send: ``sent`` (the provider took it, ``provider_ref`` its id),
    ``refused`` (for good: a number the provider will never reach; the message fails) or
    ``error`` (worth trying again: a timeout, a 5xx)."""

    result: str
    provider_ref: str | None = None
    error: str | None = None


def _record_sent(conn: sa.Connection, sent: list[tuple[Taken, Outcome]],
                 now: datetime) -> int:
    """Sends that went out, in one statement per worker (a batch is one worker's): each row
    changes only while its lease is still ours; how many did."""
    changed = 0
    by_worker: dict[str, list[tuple[Taken, Outcome]]] = {}
    for m, out in sent:
        by_worker.setdefault(m.taken_by, []).append((m, out))
    for worker, part in by_worker.items():
        c = outbox.c
        changed += len(conn.execute(sa.update(outbox).where(
            c.id.in_([m.id for m, _o in part]), c.state == "waiting", c.taken_by == worker,
            c.attempts == sa.case({m.id: m.attempts for m, _o in part}, value=c.id)).values(
            state="sent", sent_at=now, last_error=None, taken_by=None, taken_until=None,
            provider_ref=sa.case({m.id: o.provider_ref for m, o in part}, value=c.id))
            .returning(c.id)).all())
    return changed


def record(conn: sa.Connection, done: list[tuple[Taken, Outcome]],
           now: datetime | None = None) -> dict[str, int]:
    """Record a batch of sends, each only while its lease is still ours (a message taken over
    by another worker is left to it). Counts by new state ('lost' for those no longer ours)."""
    now = now or utcnow()
    sent = [(m, o) for m, o in done if o.result == "sent"]
    counted: dict[str, int] = {}
    if sent:
        n = _record_sent(conn, sent, now)
        counted = {k: v for k, v in (("sent", n), ("lost", len(sent) - n)) if v}
    for m, out in done:
        if out.result == "sent":
            continue
        ours = (outbox.c.id == m.id, outbox.c.state == "waiting",
                outbox.c.taken_by == m.taken_by, outbox.c.attempts == m.attempts)
        if out.result == "refused" or m.attempts >= m.max_attempts:
            state = "failed" if out.result == "refused" else "dead"
            values = {"last_error": (out.error or "")[:2000], "finished_at": now}
        else:
            state, values = "waiting", {"last_error": (out.error or "")[:2000],
                                        "run_after": now + backoff(m.attempts)}
        changed = conn.execute(sa.update(outbox).where(*ours).values(
            state=state, taken_by=None, taken_until=None, **values)).rowcount
        key = state if changed else "lost"
        counted[key] = counted.get(key, 0) + 1
    return counted


def apply_receipt(conn: sa.Connection, delivery_id: str, delivered: bool,
                  error: str | None = None, now: datetime | None = None) -> bool:
    """A provider's delivery receipt: a sent message is delivered, or failed with the
    provider's reason. A receipt may overtake the worker's own record of the send (the
    provider answered, the worker has not written it yet, or was killed): a waiting message
    is then finished too, and the worker's late record finds it no longer its own. True when
    the message changed."""
    now = now or utcnow()
    values: dict[str, Any] = {"state": "delivered" if delivered else "failed",
                              "finished_at": now, "taken_by": None, "taken_until": None}
    if not delivered:
        values["last_error"] = (error or "failed")[:2000]
    return bool(conn.execute(sa.update(outbox).where(
        outbox.c.delivery_id == delivery_id, outbox.c.state.in_(("waiting", "sent")))
        .values(**values)).rowcount)


def requeue(conn: sa.Connection, message_id: int, now: datetime | None = None) -> str | None:
    """Send a failed or dead message again, as a new delivery (the providers would drop its old
    delivery id as a duplicate): its address and parameters sealed again under the new id.
    The new delivery id, or None when the message is not failed or dead."""
    now = now or utcnow()
    row = conn.execute(sa.select(outbox).where(
        outbox.c.id == message_id, outbox.c.state.in_(("failed", "dead")))).first()
    if row is None:
        return None
    to, params = opened(conn, row)
    ring = keyring_for(conn)
    delivery_id = secrets.token_hex(16)
    changed = conn.execute(sa.update(outbox).where(
        outbox.c.id == message_id, outbox.c.delivery_id == row.delivery_id).values(
        delivery_id=delivery_id, sealed_to=ring.seal(to, f"outbox:{delivery_id}:to"),
        sealed_params=ring.seal(json.dumps(params, sort_keys=True, ensure_ascii=False),
                                f"outbox:{delivery_id}:params"),
        state="waiting", attempts=0, run_after=now, taken_by=None, taken_until=None,
        provider_ref=None, last_error=None, sent_at=None, finished_at=None)).rowcount
    return delivery_id if changed else None
