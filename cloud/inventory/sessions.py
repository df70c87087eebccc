"""Creating a session: the catalog's session row, and the inventory it is sold from (its own
seat configuration, a copy of the venue map), in one transaction."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import events, sessions
from cloud.core.audit import SYSTEM, record
from cloud.core.changes import record_change
from cloud.inventory.seats import InventoryError, copy_venue_map
from sync.timeutil import to_iso


def create_session(conn: sa.Connection, event_id: int, venue_id: int, name: str,
                   starts_at: datetime, ends_at: datetime,
                   gates_open_at: datetime | None = None, actor: str = SYSTEM) -> int:
    """A session of an event at a venue, with its own seat configuration copied from the
    venue map, sent to the venue's appliances in the same transaction."""
    if conn.execute(sa.select(events.c.id).where(events.c.id == event_id)).first() is None:
        raise InventoryError("unknown_event", event_id=event_id)
    if ends_at <= starts_at:
        raise InventoryError("session_ends_before_start")
    if gates_open_at is not None and gates_open_at > starts_at:
        raise InventoryError("gates_open_after_start")
    session_id = conn.execute(sa.insert(sessions).values(
        event_id=event_id, venue_id=venue_id, name=name, starts_at=starts_at, ends_at=ends_at,
        gates_open_at=gates_open_at)).inserted_primary_key[0]
    copy_venue_map(conn, session_id, venue_id)
    change = {"type": "session", "op": "upsert", "id": session_id, "venue_id": venue_id,
              "name": name, "starts_at": to_iso(starts_at), "ends_at": to_iso(ends_at)}
    if gates_open_at is not None:
        change["gates_open_at"] = to_iso(gates_open_at)
    record_change(conn, venue_id, change)
    record(conn, actor, "session.create", f"session:{session_id}", None,
           {"venue_id": venue_id, "name": name, "starts_at": to_iso(starts_at)})
    return session_id
