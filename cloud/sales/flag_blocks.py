"""An entry flag at the gates: a ``holder`` block in every venue's change log.

The appliance matches holders by its own keyed hash of their document, which the hub cannot
make (each side keys its hash with a key of its own). So the block names the document itself
(``doc_type``, ``doc_number``: sealed in the log like a holder record's, opened only for an
authenticated appliance), and the appliance hashes it with its own key as it applies the
change (edge/allowlist.py). The block's ``value`` is ``flag:<id>``: one block per flag, so
lifting one of two flags on a person leaves the other standing.

- Adding an entry flag writes the block to every venue in the flag's transaction; lifting it
  writes the delete to every venue that got the block, in the lift's transaction.
- Expiry needs a writer: :func:`send_entry_blocks`, the worker's periodic task
  ``entry_flag_blocks`` (cloud/cli.py), writes the deletes of entry flags past their expiry,
  and the block of a live flag to a venue created after it. An expired entry flag stops
  counting on the hub at once, but its block lifts at the appliances at the task's next run
  after the expiry (and then at their next sync).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import venues
from cloud.core.audit import SYSTEM, record
from cloud.core.changes import record_changes
from cloud.core.seal import context, keyring_for
from cloud.sales.tables import risk_flags
from sync.timeutil import utcnow


def block_value(flag_id: int) -> str:
    return f"flag:{flag_id}"


def block_change(flag_id: int, doc_type: str, number: str) -> dict:
    """The block record of an entry flag (``number`` normalised)."""
    return {"type": "block", "op": "upsert", "kind": "holder", "value": block_value(flag_id),
            "reason": f"risk flag {flag_id}", "doc_type": doc_type, "doc_number": number}


def delete_change(flag_id: int) -> dict:
    return {"type": "block", "op": "delete", "kind": "holder", "value": block_value(flag_id)}


def _all_venues(conn: sa.Connection) -> list[int]:
    return list(conn.execute(sa.select(venues.c.id).order_by(venues.c.id)).scalars())


def block_everywhere(conn: sa.Connection, flag_id: int, doc_type: str, number: str,
                     now: datetime, known: tuple[int, ...] = ()) -> list[int]:
    """Write the flag's block to every venue not in ``known`` and remember them all; the
    venues written to."""
    todo = [v for v in _all_venues(conn) if v not in set(known)]
    if todo:
        change = block_change(flag_id, doc_type, number)
        record_changes(conn, [(v, change) for v in todo], now)
        conn.execute(sa.update(risk_flags).where(risk_flags.c.id == flag_id)
                     .values(venues=sorted(set(known) | set(todo))))
    return todo


def unblock(conn: sa.Connection, row, now: datetime) -> None:
    """Write the delete of a flag's block to every venue that got it, once."""
    if row.venues:
        record_changes(conn, [(v, delete_change(row.id)) for v in sorted(row.venues)], now)
    conn.execute(sa.update(risk_flags).where(risk_flags.c.id == row.id)
                 .values(unblocked_at=now))


def send_entry_blocks(conn: sa.Connection, now: datetime | None = None,
                      limit: int = 500) -> int:
    """The worker's periodic task: the blocks of entry flags expired by ``now`` deleted (each
    audited ``flag.expire``), and live entry flags' blocks sent to venues created since;
    how many flags it changed."""
    now = now or utcnow()
    waiting = sa.and_(risk_flags.c.blocks == "entry", risk_flags.c.unblocked_at.is_(None))
    expired = conn.execute(sa.select(risk_flags).where(
        waiting, risk_flags.c.lifted_at.is_(None), risk_flags.c.expires_at <= now)
        .order_by(risk_flags.c.id).limit(limit).with_for_update()).all()
    for row in expired:
        unblock(conn, row, now)
        record(conn, SYSTEM, "flag.expire", f"risk_flag:{row.id}", {"state": "live"},
               {"state": "expired", "venues": sorted(row.venues or ())})
    everywhere = set(_all_venues(conn))
    live_rows = conn.execute(sa.select(risk_flags).where(
        waiting, risk_flags.c.lifted_at.is_(None),
        sa.or_(risk_flags.c.expires_at.is_(None), risk_flags.c.expires_at > now))
        .order_by(risk_flags.c.id).limit(limit)).all()
    behind = [r for r in live_rows if not everywhere <= set(r.venues or ())]
    ring = keyring_for(conn) if behind else None
    for row in behind:
        number = ring.open(row.sealed_doc_number, context("risk_flags", row.id, "doc_number"))
        block_everywhere(conn, row.id, row.doc_type, number, now, tuple(row.venues or ()))
    return len(expired) + len(behind)
