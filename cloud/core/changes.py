"""Writing and reading the change log (the hub's side of the allowlist cursor).

Personal fields of a record (a holder's name and document number) are sealed in the log under
the data key, for the record's seq; they are opened only when served to an appliance.

A change is recorded inside the transaction that caused it. Its ``seq`` comes from the
``change_log`` counter row, bumped with ``UPDATE ... RETURNING``: a second writer waits on that
row until the first commits, so seq order is commit order and a reader that pages with
``seq > cursor`` never passes over a change that commits after it looked. (A database sequence
hands numbers out at insert time, not commit time, and would let a reader skip one.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata
from cloud.core.seal import PERSONAL_FIELDS, key_id_of, keyring_for, open_record, seal_record
from sync.changes import parse_change
from sync.timeutil import utcnow

# Single-row counters, each bumped with UPDATE ... RETURNING inside the transaction that uses
# the value: the row lock orders the writers, so values are handed out in commit order.
counters = sa.Table(
    "counters", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.CheckConstraint("value >= 0", name="value_not_negative"),
)


# The change log the allowlist is served from: one row per change per venue, written in the
# same transaction as the sale, refund or edit that caused it. seq comes from the
# 'change_log' counter, so a reader paging by seq never skips a row that commits late.
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


def next_value(conn: sa.Connection, name: str) -> int:
    """The next value of a counter, taken inside the caller's transaction."""
    return next_values(conn, name, 1).start


def next_values(conn: sa.Connection, name: str, n: int) -> range:
    """The next ``n`` values of a counter, in one statement."""
    last = conn.execute(
        sa.update(counters).where(counters.c.name == name)
        .values(value=counters.c.value + n).returning(counters.c.value)).scalar_one()
    return range(int(last) - n + 1, int(last) + 1)


def claim_turn(conn: sa.Connection, name: str, at_ms: int, min_interval_ms: int) -> bool:
    """A turn of a periodic job, at most one per ``min_interval_ms``: the counter holds the time
    of the last turn. The row lock queues a concurrent claimer, which then sees the new time and
    is refused; True when this caller's turn was taken."""
    q = sa.update(counters).where(counters.c.name == name)
    if min_interval_ms > 0:
        q = q.where(counters.c.value <= at_ms - min_interval_ms)
    return conn.execute(q.values(value=at_ms).returning(counters.c.value)).first() is not None


def record_change(conn: sa.Connection, venue_id: int, change: dict[str, Any],
                  now: datetime | None = None) -> int:
    """Append one change for one venue; the record is checked against the sync schema first,
    so the hub can never serve a change the appliance would refuse."""
    seq = next_value(conn, "change_log")
    record = {**change, "seq": seq}
    parse_change(record)  # raises ChangeError before anything is written
    conn.execute(sa.insert(change_log).values(
        seq=seq, venue_id=venue_id, kind=change["type"], op=change["op"],
        record=_sealed(conn, seq, record),
        created_at=now or utcnow()))
    return seq


def record_changes(conn: sa.Connection, changes: list[tuple[int, dict[str, Any]]],
                   now: datetime | None = None) -> None:
    """Append many (venue id, change) pairs in order, with one counter bump and one insert."""
    if not changes:
        return
    now = now or utcnow()
    rows = []
    for seq, (venue_id, change) in zip(next_values(conn, "change_log", len(changes)), changes,
                                       strict=True):
        record = {**change, "seq": seq}
        parse_change(record)
        rows.append({"seq": seq, "venue_id": venue_id, "kind": change["type"],
                     "op": change["op"], "record": _sealed(conn, seq, record),
                     "created_at": now})
    conn.execute(sa.insert(change_log), rows)


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


def last_seq(conn: sa.Connection) -> int:
    """The seq of the newest committed change of any venue. Read before the changes: every
    change up to it has committed (seq order is commit order), so a venue that is caught up to
    it may move its cursor there, even past seqs that belong to other venues."""
    return int(conn.execute(sa.select(counters.c.value).where(counters.c.name == "change_log"))
               .scalar_one())
