"""Compacting the change log, with tombstone retention.

A change older than the retention is dropped when a later change for the same record supersedes
it, and a delete (a tombstone) older than the retention is dropped outright: an appliance that
syncs from cursor 0 still rebuilds the same allowlist, from fewer changes. The seq of the newest
change old enough to be compacted becomes the *horizon*: a cursor below it (other than 0, which
is a full sync) may have missed a tombstone, and is answered 410 so that the appliance takes a
snapshot from 0 instead.

Both numbers live in the ``counters`` table, no schema change: ``change_log_horizon`` and, per
venue, ``compacted:<venue id>`` (how many of its changes were dropped). The allowlist checksum
adds the dropped count, so an appliance that saw every change before compaction and one that
synced from 0 after it agree with the hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from cloud.core.changes import change_log, counters, lock_whole_log
from sync.changes import SCHEMA
from sync.timeutil import utcnow

HORIZON = "change_log_horizon"


def _compacted_name(venue_id: int) -> str:
    return f"compacted:{venue_id}"


def _read(conn: sa.Connection, name: str) -> int:
    return int(conn.execute(sa.select(counters.c.value).where(counters.c.name == name))
               .scalar() or 0)


def _add(conn: sa.Connection, name: str, n: int) -> None:
    done = conn.execute(sa.update(counters).where(counters.c.name == name)
                        .values(value=counters.c.value + n)).rowcount
    if not done:
        conn.execute(sa.insert(counters).values(name=name, value=n))


def horizon(conn: sa.Connection) -> int:
    """The oldest cursor (besides 0) the hub still serves."""
    return _read(conn, HORIZON)


def compacted(conn: sa.Connection, venue_id: int) -> int:
    """How many of the venue's changes compaction has dropped."""
    return _read(conn, _compacted_name(venue_id))


@dataclass(frozen=True)
class Compaction:
    horizon: int
    superseded: int
    tombstones: int


def _key(kind: str, record: dict) -> tuple:
    return tuple(record.get(f) for f in SCHEMA[kind][0])


def compact(conn: sa.Connection, keep_days: float, now: datetime | None = None) -> Compaction:
    """Drop superseded changes and tombstones older than ``keep_days``; raise the horizon.

    Runs in the caller's transaction. The whole log is locked first (:func:`lock_whole_log`),
    so no change commits while the log is being rewritten."""
    if keep_days < 0:
        raise ValueError("keep_days must not be negative")
    now = now or utcnow()
    cutoff = now - timedelta(days=keep_days)
    lock_whole_log(conn)
    old = conn.execute(sa.select(sa.func.max(change_log.c.seq))
                       .where(change_log.c.created_at < cutoff)).scalar()
    current = horizon(conn)
    if old is None or old <= current:
        return Compaction(current, 0, 0)
    latest: dict[tuple, int] = {}
    rows = conn.execute(sa.select(change_log.c.seq, change_log.c.venue_id, change_log.c.kind,
                                  change_log.c.op, change_log.c.record)
                        .order_by(change_log.c.seq)).all()
    for r in rows:
        latest[(r.venue_id, r.kind, _key(r.kind, r.record))] = r.seq
    drop: list[int] = []
    per_venue: dict[int, int] = {}
    superseded = tombstones = 0
    for r in rows:
        if r.seq > old:
            break
        newest = latest[(r.venue_id, r.kind, _key(r.kind, r.record))]
        if newest != r.seq:
            superseded += 1
        elif r.op == "delete":
            tombstones += 1
        else:
            continue
        drop.append(r.seq)
        per_venue[r.venue_id] = per_venue.get(r.venue_id, 0) + 1
    for start in range(0, len(drop), 1000):
        conn.execute(sa.delete(change_log).where(change_log.c.seq.in_(drop[start:start + 1000])))
    for venue_id, n in per_venue.items():
        _add(conn, _compacted_name(venue_id), n)
    _add(conn, HORIZON, old - current)
    return Compaction(old, superseded, tombstones)
