"""What happened after a lane opened: the passage result of an admitted entry.

An admission at a lane with a turnstile is recorded by ``Engine.decide(..., passage=True)``
as ``passage = 'pending'``: admitted, so that no other lane can admit the same ticket while
this one is open. Then exactly one of these settles it:

- :func:`confirm` — the turnstile's passage input fired: ``passed``;
- :func:`annul` — nobody passed within the lane's time (``timeout``) or the lane could not be
  opened (``failed``): ``admitted`` goes back to 0, so the ticket stays unused, and the
  entry's detail says why;
- :func:`settle_orphans` — at start-up, entries a previous run left pending are settled as
  ``unconfirmed``: the lane was open and nobody knows whether someone went through, so the
  admission stands (the safe side: a ticket is never good twice by accident).

Each is one conditional UPDATE (``WHERE passage = 'pending'``): a result arriving twice, or
late, changes nothing. The engine's rules count only ``admitted = 1`` entries, so an
annulled admission costs the hot path nothing.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime

from sync.timeutil import to_iso

log = logging.getLogger(__name__)

PASSED, TIMEOUT, FAILED, NO_SENSOR, UNCONFIRMED = (
    "passed", "timeout", "failed", "no_sensor", "unconfirmed")


def await_passage(conn: sqlite3.Connection, entry_id: str) -> bool:
    """Mark an admitted entry made elsewhere (the gate screen, an override) as waiting for a
    passage at the lane the runtime is about to open."""
    return conn.execute(
        "UPDATE entries SET passage = 'pending' WHERE id = ? AND admitted = 1 "
        "AND passage IS NULL", (entry_id,)).rowcount == 1


def confirm(conn: sqlite3.Connection, entry_id: str, now: datetime,
            result: str = PASSED) -> bool:
    """Someone passed (or the lane has no sensor and the opening counts)."""
    if result not in (PASSED, NO_SENSOR):
        raise ValueError(f"{result!r} does not confirm an entry")
    return conn.execute(
        "UPDATE entries SET passage = ?, passage_at = ? WHERE id = ? AND passage = 'pending'",
        (result, to_iso(now), entry_id)).rowcount == 1


def annul(conn: sqlite3.Connection, entry_id: str, now: datetime, result: str,
          why: str) -> bool:
    """Nobody passed, or the lane never opened: the admission is undone, the ticket unused."""
    if result not in (TIMEOUT, FAILED):
        raise ValueError(f"{result!r} does not annul an entry")
    return conn.execute(
        "UPDATE entries SET passage = ?, passage_at = ?, admitted = 0, "
        "detail = CASE WHEN detail = '' THEN ? ELSE detail || '; ' || ? END "
        "WHERE id = ? AND passage = 'pending'",
        (result, to_iso(now), why, why, entry_id)).rowcount == 1


def settle_orphans(conn: sqlite3.Connection, now: datetime) -> int:
    """Entries left pending by a runtime that stopped: ``unconfirmed``, still admitted."""
    count = conn.execute(
        "UPDATE entries SET passage = 'unconfirmed', passage_at = ?, "
        "detail = CASE WHEN detail = '' THEN ? ELSE detail || '; ' || ? END "
        "WHERE passage = 'pending'",
        (to_iso(now), _ORPHAN, _ORPHAN)).rowcount
    if count:
        log.warning("%d admissions were waiting for a passage when the gate runtime stopped; "
                    "they stand as unconfirmed", count)
    return count


_ORPHAN = "passage unconfirmed: the gate runtime stopped while the lane was open"
