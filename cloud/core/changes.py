"""Writing and reading the change log (the hub's side of the allowlist cursor).

Personal fields of a record (a holder's name and document number) are sealed in the log under
the data key, for the record's seq; they are opened only when served to an appliance.

A change is recorded inside the transaction that caused it, and the contract is: for one
venue, ``seq`` is strictly increasing in commit order, so a reader paging a venue's changes
with ``seq > cursor`` never passes over a change that commits after it looked.

How that holds without one row every sale queues behind (:func:`next_values`, one function
for both databases):

- SQLite has one writer at a time, so the ``change_log`` row of ``counters``, bumped with
  ``UPDATE ... RETURNING``, costs nothing more: writers are serialised anyway and the row hands
  numbers out in commit order.
- PostgreSQL takes seqs from the sequence ``change_log_seq``. A sequence hands numbers out at
  call time, not commit time, so a writer first takes its venue's *turn*, a transaction-scoped
  advisory lock per venue (:func:`take_turns`, venues in id order): writers for one venue
  queue (only for the few statements between the log insert and the commit, since the log is
  written last), writers for different venues do not. A reader wanting a safe top for its
  venue waits for the venue's turn to be free for a moment and reads the sequence then
  (:func:`last_seq`): every seq of that venue at or below it has committed, and any later one
  is above it. Compaction takes the whole log's lock, which writers hold shared.
- Ticket and holder ids come the same way (``ticket_id_seq``, ``holder_id_seq``), with no
  turn: they need to be unique, not ordered. On PostgreSQL a rolled-back transaction leaves a
  gap in each; nothing reads the gaps (the allowlist checksum counts changes, not seqs).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.core.db import UtcDateTime, metadata
from cloud.core.seal import PERSONAL_FIELDS, key_id_of, keyring_for, open_record, seal_record
from sync.changes import parse_change
from sync.timeutil import utcnow

# Single-row counters, each bumped with UPDATE ... RETURNING inside the transaction that uses
# the value: the row lock orders the writers, so values are handed out in commit order. On
# PostgreSQL the 'ticket', 'holder' and 'change_log' numbers come from sequences instead
# (SEQUENCES; migration 0021), so that no sale waits on another's row.
counters = sa.Table(
    "counters", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.CheckConstraint("value >= 0", name="value_not_negative"),
)


# The change log the allowlist is served from: one row per change per venue, written in the
# same transaction as the sale, refund or edit that caused it. seq comes from next_values
# after the venue's turn, so a reader paging by seq never skips a row that commits late.
change_log = sa.Table(
    "change_log", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("venue_id", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("op", sa.String(10), nullable=False),
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("op IN ('upsert', 'delete')", name="op_known"),
    sa.Index("ix_change_log_venue_seq", "venue_id", "seq"),
)


# The counters that are PostgreSQL sequences there (made by migration 0021).
SEQUENCES = {"ticket": "ticket_id_seq", "holder": "holder_id_seq",
             "change_log": "change_log_seq"}

# Advisory lock keys (two int4 form): (LOG_LOCK, 0) is the whole log, held shared by writers
# and exclusively by compaction; (LOG_LOCK, venue id) is a venue's turn.
LOG_LOCK = 0x57434C47


def next_value(conn: sa.Connection, name: str) -> int:
    """The next value of a counter, taken inside the caller's transaction."""
    return next_values(conn, name, 1)[0]


def next_values(conn: sa.Connection, name: str, n: int) -> list[int]:
    """The next ``n`` values of a counter, ascending, in one statement: from its sequence on
    PostgreSQL (no row lock: concurrent callers do not wait on each other; values may be
    interleaved with theirs), from its row of ``counters`` elsewhere (SQLite's single writer
    orders the callers anyway)."""
    if n <= 0:
        return []
    if _is_pg(conn) and name in SEQUENCES:
        return sorted(int(v) for v in conn.execute(_NEXTVALS[name], {"n": n}).scalars())
    last = conn.execute(_ADVANCE, {"counter": name, "n": n}).scalar_one()
    return list(range(int(last) - n + 1, int(last) + 1))


# the statements of the busiest writers (every sale appends to the log), built once
_NEXTVALS = {name: sa.text(f"SELECT nextval('{sequence}') FROM generate_series(1, :n)")
             for name, sequence in SEQUENCES.items()}
_ADVANCE = sa.update(counters).where(counters.c.name == sa.bindparam("counter")).values(
    value=counters.c.value + sa.bindparam("n", type_=sa.BigInteger)).returning(counters.c.value)
_SHARED_TURN = sa.text("SELECT pg_advisory_xact_lock_shared(:k, 0)")
_TURN = sa.text("SELECT pg_advisory_xact_lock(:k, :v)")
_INSERT_CHANGES = sa.insert(change_log)


def _is_pg(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def take_turns(conn: sa.Connection, venue_ids: list[int] | set[int]) -> None:
    """The turn of each venue to append to the log, held until the caller's transaction ends
    (PostgreSQL; on SQLite the writer's lock is the turn). Taken in venue order, so that two
    writers for the same venues never wait on each other in a circle."""
    if not _is_pg(conn):
        return
    conn.execute(_SHARED_TURN, {"k": LOG_LOCK})
    for venue_id in sorted(set(venue_ids)):
        conn.execute(_TURN, {"k": LOG_LOCK, "v": venue_id})


def lock_whole_log(conn: sa.Connection) -> None:
    """Stop every writer of the log until the caller's transaction ends (compaction)."""
    if _is_pg(conn):
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k, 0)"), {"k": LOG_LOCK})
    else:
        conn.execute(sa.update(counters).where(counters.c.name == "change_log")
                     .values(value=counters.c.value))


def claim_turn(conn: sa.Connection, name: str, at_ms: int, min_interval_ms: int) -> bool:
    """A turn of a periodic job, at most one per ``min_interval_ms``: the counter holds the time
    of the last turn. The row lock queues a concurrent claimer, which then sees the new time and
    is refused; True when this caller's turn was taken."""
    q = sa.update(counters).where(counters.c.name == name)
    if min_interval_ms > 0:
        q = q.where(counters.c.value <= at_ms - min_interval_ms)
    return conn.execute(q.values(value=at_ms).returning(counters.c.value)).first() is not None


def stored_cursor(conn: sa.Connection, name: str) -> int | None:
    """A reader's stored position (a ``counters`` row of its own: a background reader of some
    table keeps where it got to), or None before its first turn."""
    return conn.execute(sa.select(counters.c.value).where(counters.c.name == name)).scalar()


def store_cursor(conn: sa.Connection, name: str, value: int) -> None:
    """Keep a reader's position, in the transaction of what it did up to there."""
    insert = postgresql.insert if _is_pg(conn) else sqlite.insert
    conn.execute(insert(counters).values(name=name, value=value).on_conflict_do_update(
        index_elements=["name"], set_={"value": value}))


def record_change(conn: sa.Connection, venue_id: int, change: dict[str, Any],
                  now: datetime | None = None) -> int:
    """Append one change for one venue; the record is checked against the sync schema first,
    so the hub can never serve a change the appliance would refuse."""
    return record_changes(conn, [(venue_id, change)], now)[0]


def record_changes(conn: sa.Connection, changes: list[tuple[int, dict[str, Any]]],
                   now: datetime | None = None) -> list[int]:
    """Append many (venue id, change) pairs in order, after the turns of their venues, with
    one numbering statement and one insert; their seqs. Every record is checked before a
    number is taken, so a refused change takes none."""
    if not changes:
        return []
    now = now or utcnow()
    for _, change in changes:
        parse_change({**change, "seq": 1})  # raises ChangeError before anything is written
    take_turns(conn, {venue_id for venue_id, _ in changes})
    rows = []
    seqs = next_values(conn, "change_log", len(changes))
    for seq, (venue_id, change) in zip(seqs, changes, strict=True):
        record = {**change, "seq": seq}
        rows.append({"seq": seq, "venue_id": venue_id, "kind": change["type"],
                     "op": change["op"], "record": _sealed(conn, seq, record),
                     "created_at": now})
    conn.execute(_INSERT_CHANGES, rows)
    return seqs


def _sealed(conn: sa.Connection, seq: int, record: dict[str, Any]) -> dict[str, Any]:
    """The record as the log keeps it: personal fields sealed for this seq (the clear values
    are opened again only when served to an appliance: see :func:`open_changes`)."""
    if record["type"] not in PERSONAL_FIELDS:
        return record
    return seal_record(keyring_for(conn), seq, record)


def open_changes(conn: sa.Connection, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Change records as an authenticated appliance receives them, personal fields in clear."""
    if not any(r["type"] in PERSONAL_FIELDS for r in records):
        return records
    ring = keyring_for(conn)
    return [open_record(ring, r) for r in records]


def reseal_changes(conn: sa.Connection, after_seq: int, limit: int) -> tuple[int | None, int, int]:
    """One batch of a data key rotation: the records with personal fields after ``after_seq``
    (at most ``limit``) sealed again under the current key. Returns the last seq looked at
    (None when there are no more), how many records it looked at and how many changed."""
    ring = keyring_for(conn)
    rows = conn.execute(sa.select(change_log.c.seq, change_log.c.record).where(
        change_log.c.seq > after_seq, change_log.c.kind.in_(list(PERSONAL_FIELDS)))
        .order_by(change_log.c.seq).limit(limit)).all()
    if not rows:
        return None, 0, 0
    stale = [r for r in rows if any(
        key_id_of(r.record.get(f)) not in (None, ring.current_id)
        for f in PERSONAL_FIELDS[r.record["type"]])]
    if stale:
        conn.execute(sa.update(change_log).where(change_log.c.seq == sa.bindparam("s"))
                     .values(record=sa.bindparam("r", type_=sa.JSON)),
                     [{"s": r.seq, "r": seal_record(ring, r.seq, open_record(ring, r.record))}
                      for r in stale])
    return rows[-1].seq, len(rows), len(stale)


def count_personal_changes(conn: sa.Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(change_log).where(
        change_log.c.kind.in_(list(PERSONAL_FIELDS)))).scalar_one()


def changes_since(conn: sa.Connection, venue_id: int, cursor: int, limit: int = 1000,
                  upto: int | None = None) -> list[dict[str, Any]]:
    """The venue's changes after ``cursor`` (and up to ``upto``), oldest first."""
    query = sa.select(change_log.c.record).where(change_log.c.venue_id == venue_id,
                                                 change_log.c.seq > cursor)
    if upto is not None:
        query = query.where(change_log.c.seq <= upto)
    return [r.record for r in conn.execute(query.order_by(change_log.c.seq).limit(limit))]


def last_seq(conn: sa.Connection, venue_id: int) -> int:
    """A seq up to which every change of the venue has committed, and above which any change of
    it yet to commit will be numbered: the top a reader pages the venue's changes to (and the
    cursor it may move a caught-up venue to, even past seqs of other venues). Read before the
    changes.

    SQLite: the newest seq of any venue (one writer at a time: seq order is commit order).
    PostgreSQL: the sequence as it stands while the venue's turn is free — the reader waits
    for a writer of this venue to commit, never holds the turn past this call."""
    if not _is_pg(conn):
        return int(conn.execute(sa.select(counters.c.value)
                                .where(counters.c.name == "change_log")).scalar_one())
    params = {"k": LOG_LOCK, "v": venue_id}
    conn.execute(sa.text("SELECT pg_advisory_lock_shared(:k, :v)"), params)
    try:
        top = int(conn.execute(sa.text(
            "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
            f"FROM {SEQUENCES['change_log']}")).scalar_one())
    except BaseException:
        # the lock is the session's, and a failed statement leaves a transaction that cannot
        # unlock: the connection is closed rather than returned to the pool holding the turn
        conn.invalidate()
        raise
    conn.execute(sa.text("SELECT pg_advisory_unlock_shared(:k, :v)"), params)
    return top
