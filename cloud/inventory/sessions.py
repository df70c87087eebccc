"""Sessions: creating one (the catalog's session row, and the inventory it is sold from — its
own seat configuration, a copy of the venue map — in one transaction), editing its sale rules,
postponing it to new times and cancelling it. The sessions table is written here only (the
layout's one writer per table: the inventory owns a session's life)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import events, sessions
from cloud.core.audit import SYSTEM, record
from cloud.core.changes import record_change
from cloud.core.jobs import enqueue
from cloud.inventory.seats import InventoryError, copy_venue_map
from sync.timeutil import to_iso

# The job a cancellation writes: the payments area refunds the session's paid orders
# (cloud/payments/refund_approval.py, registered by the worker), resumable, in batches.
REFUND_CANCELLED_JOB = "sessions.refund_cancelled"


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


# The longest an order of a session may wait for its payment (cloud/sales/orders.py holds
# every order to it): thirty days.
MAX_PAYMENT_MINUTES = 30 * 24 * 60
# What edit_session may change, beside the name; times move with postpone_session.
EDITABLE = ("name", "sale_opens_at", "sale_closes_at", "real_name", "buyer_limit",
            "holder_limit", "payment_minutes")


def _session(conn: sa.Connection, session_id: int):
    s = conn.execute(sa.select(sessions).where(sessions.c.id == session_id)
                     .with_for_update()).first()
    if s is None:
        raise InventoryError("unknown_session", session_id=session_id)
    if s.state == "cancelled":
        raise InventoryError("session_cancelled", session_id=session_id)
    return s


def _check_edit(s, changes: dict) -> None:
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InventoryError("not_editable", fields=", ".join(sorted(unknown)))
    opens = changes.get("sale_opens_at", s.sale_opens_at)
    closes = changes.get("sale_closes_at", s.sale_closes_at)
    if opens is not None and closes is not None and closes <= opens:
        raise InventoryError("bad_sale_window")
    for key in ("buyer_limit", "holder_limit", "payment_minutes"):
        value = changes.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise InventoryError("bad_limit", field=key)
    if changes.get("payment_minutes", 1) is None:
        raise InventoryError("bad_limit", field="payment_minutes")
    if (changes.get("payment_minutes") or 0) > MAX_PAYMENT_MINUTES:
        raise InventoryError("payment_minutes_too_long", high=MAX_PAYMENT_MINUTES,
                             field="payment_minutes")
    if "name" in changes and not (isinstance(changes["name"], str)
                                  and 1 <= len(changes["name"].strip()) <= 200):
        raise InventoryError("bad_session_name")


def edit_session(conn: sa.Connection, session_id: int, actor: str = SYSTEM,
                 **changes) -> None:
    """Change a session's name, sale window (``sale_opens_at``/``sale_closes_at``, either
    None for open-ended), real-name rule, per-buyer and per-holder limits, or payment
    deadline in minutes; audited with the values before and after. A cancelled session is
    not edited. A new name reaches the venue's appliances in the same transaction."""
    s = _session(conn, session_id)
    _check_edit(s, changes)
    if not changes:
        return
    conn.execute(sa.update(sessions).where(sessions.c.id == session_id).values(**changes))
    record(conn, actor, "session.edit", f"session:{session_id}",
           {k: _plain(getattr(s, k)) for k in changes},
           {k: _plain(v) for k, v in changes.items()})
    if "name" in changes:
        _send(conn, session_id)


def postpone_session(conn: sa.Connection, session_id: int, starts_at: datetime,
                     ends_at: datetime, gates_open_at: datetime | None = None,
                     actor: str = SYSTEM) -> None:
    """Move a session to new times: it becomes ``postponed`` (it goes on selling; the
    appliances learn the new times in the same transaction). Audited."""
    s = _session(conn, session_id)
    if ends_at <= starts_at:
        raise InventoryError("session_ends_before_start")
    if gates_open_at is not None and gates_open_at > starts_at:
        raise InventoryError("gates_open_after_start")
    conn.execute(sa.update(sessions).where(sessions.c.id == session_id).values(
        state="postponed", starts_at=starts_at, ends_at=ends_at, gates_open_at=gates_open_at))
    record(conn, actor, "session.postpone", f"session:{session_id}",
           {"state": s.state, "starts_at": to_iso(s.starts_at), "ends_at": to_iso(s.ends_at)},
           {"state": "postponed", "starts_at": to_iso(starts_at), "ends_at": to_iso(ends_at)})
    _send(conn, session_id)


def cancel_session(conn: sa.Connection, session_id: int, actor: str = SYSTEM,
                   now: datetime | None = None) -> None:
    """Cancel a session: nothing more is sold for it, and its paid orders are refunded in full
    by the worker (a job written in this transaction; ``wicket-hub refund-session`` does the
    same by hand). Audited, with ``actor`` as the maker of those refunds; cancelling twice is
    refused."""
    s = _session(conn, session_id)
    conn.execute(sa.update(sessions).where(sessions.c.id == session_id)
                 .values(state="cancelled"))
    record(conn, actor, "session.cancel", f"session:{session_id}", {"state": s.state},
           {"state": "cancelled"})
    enqueue(conn, REFUND_CANCELLED_JOB, {"session_id": session_id}, now=now)


def _plain(value):
    return to_iso(value) if isinstance(value, datetime) else value


def _send(conn: sa.Connection, session_id: int) -> None:
    s = conn.execute(sa.select(sessions).where(sessions.c.id == session_id)).one()
    change = {"type": "session", "op": "upsert", "id": s.id, "venue_id": s.venue_id,
              "name": s.name, "starts_at": to_iso(s.starts_at), "ends_at": to_iso(s.ends_at)}
    if s.gates_open_at is not None:
        change["gates_open_at"] = to_iso(s.gates_open_at)
    record_change(conn, s.venue_id, change)
