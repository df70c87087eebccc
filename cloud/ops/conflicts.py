"""Finding conflicts among the entries appliances report.

Appliances cut off from each other cannot stop a pass or a copied code from being admitted at
both; the hub sees it when both have synced, and tells ops. It also checks every admission
against the ticket's revocation: made with an allowlist cursor that already carried the
revocation it is a fault that must never happen; made before the revocation reached the venue
it is expected offline behaviour, recorded so that ops see what got in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from cloud.catalog.tables import sessions
from cloud.core.audit import record
from cloud.core.changes import change_log
from cloud.core.errors import Code, HubError
from cloud.fleet.tables import appliances, entries
from cloud.ops.attendance import MANUAL, as_utc, iso
from cloud.ops.tables import conflicts
from cloud.sales.tables import tickets
from sync.timeutil import from_iso, to_iso, utcnow


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def foreign_entries(conn: sa.Connection, venue_id: int, checked: list[dict]) -> dict[str, str]:
    """Entries an appliance of ``venue_id`` may not report, with the reason: a session that is
    not one of the venue's (``other_venue``) or none the hub knows (``unknown_session``); an
    admission of a ticket not valid at the venue (``other_venue``) or unknown to the hub
    (``unknown_ticket``). A refused scan of another venue's ticket is a visitor at the wrong
    venue, and is kept. Lane codes are the venue's own (the hub reads them within the
    appliance's venue), so a lane cannot name another venue's. Returns reasons by entry id."""
    session_ids = sorted({e["session_id"] for e in checked if e["session_id"] is not None})
    ticket_ids = sorted({e["ticket_id"] for e in checked
                         if e["admitted"] and e["ticket_id"] is not None})
    venue_of = dict(conn.execute(sa.select(sessions.c.id, sessions.c.venue_id)
                                 .where(sessions.c.id.in_(session_ids))).all()
                    ) if session_ids else {}
    venues_of = dict(conn.execute(sa.select(tickets.c.id, tickets.c.venues)
                                  .where(tickets.c.id.in_(ticket_ids))).all()
                     ) if ticket_ids else {}
    refused: dict[str, str] = {}
    for e in checked:
        sid, tid = e["session_id"], e["ticket_id"]
        reason = None
        if sid is not None:
            reason = ("unknown_session" if sid not in venue_of
                      else "other_venue" if venue_of[sid] != venue_id else None)
        if reason is None and e["admitted"] and tid is not None:
            reason = ("unknown_ticket" if tid not in venues_of
                      else "other_venue" if venue_id not in (venues_of[tid] or []) else None)
        if reason is not None:
            refused.setdefault(e["id"], reason)
    return refused


def check_entry(conn: sa.Connection, entry: dict, venue_id: int, now: datetime) -> list[str]:
    """Record the conflicts a newly stored entry makes; returns their kinds."""
    return check_entries(conn, [entry], venue_id, now).get(entry["id"], [])


@dataclass(frozen=True)
class _Seen:
    id: str
    appliance_id: int
    session_id: int | None
    at: datetime


def check_entries(conn: sa.Connection, stored: list[dict], venue_id: int, now: datetime
                  ) -> dict[str, list[str]]:
    """Record the conflicts entries just stored make, taken in order as if one by one (an
    entry is judged against the entries stored before it, earlier ones of the same batch
    included), in a handful of statements for the whole batch. Returns kinds by entry id."""
    relevant = [e for e in stored
                if e["admitted"] and e["direction"] == "in" and e["ticket_id"] is not None]
    if not relevant:
        return {}
    ticket_ids = sorted({e["ticket_id"] for e in relevant})
    ticket_rows = {r.id: r for r in conn.execute(
        sa.select(tickets.c.id, tickets.c.role, tickets.c.kind, tickets.c.daily_limit,
                  tickets.c.state).where(tickets.c.id.in_(ticket_ids)))}
    batch = {e["id"] for e in stored}
    seen: dict[int, list[_Seen]] = defaultdict(list)
    for r in conn.execute(sa.select(entries.c.id, entries.c.appliance_id, entries.c.session_id,
                                    entries.c.at, entries.c.ticket_id)
                          .where(entries.c.ticket_id.in_(ticket_ids),
                                 entries.c.admitted.is_(True), entries.c.direction == "in")
                          .order_by(entries.c.at)):
        if r.id not in batch:
            seen[r.ticket_id].append(_Seen(r.id, r.appliance_id, r.session_id, r.at))
    found: dict[str, list[str]] = {}
    for entry in relevant:
        kinds = []
        ticket = ticket_rows.get(entry["ticket_id"])
        if ticket is not None and ticket.role != "staff":
            kinds += _double_admission(conn, entry, ticket, seen[entry["ticket_id"]], now)
        # only a ticket that is no longer 'issued' has a revocation: the change-log search
        # is left for the few that do
        if ticket is None or ticket.state != "issued":
            kinds += _revocation(conn, entry, venue_id, now)
        seen[entry["ticket_id"]].append(_Seen(entry["id"], entry["appliance_id"],
                                              entry["session_id"], entry["at"]))
        if kinds:
            found[entry["id"]] = kinds
    return found


def _double_admission(conn, entry, ticket, rows: list[_Seen], now) -> list[str]:
    if ticket.kind == "session":
        rows = [r for r in rows if r.session_id == entry["session_id"]]
        limit = 1
    else:  # a pass: its daily limit, counted across every appliance
        day = _utc(entry["at"]).date()
        rows = [r for r in rows if _utc(r.at).date() == day]
        limit = ticket.daily_limit
    elsewhere = {r.appliance_id for r in rows} - {entry["appliance_id"]}
    if not limit or not elsewhere or len(rows) + 1 <= limit:
        return []
    ids = sorted([entry["id"], *(r.id for r in rows)])
    _record(conn, "double_admission", entry["ticket_id"], ids,
            f"admitted {len(ids)} times (allowed {limit}) by {len(elsewhere) + 1} appliances",
            now)
    return ["double_admission"]


def _revocation(conn, entry, venue_id, now) -> list[str]:
    rev = conn.execute(
        sa.select(change_log.c.seq, change_log.c.record).where(
            change_log.c.venue_id == venue_id, change_log.c.kind == "revocation")
        .where(change_log.c.record["ticket_id"].as_integer() == entry["ticket_id"])
        .order_by(change_log.c.seq).limit(1)).first()
    if rev is None:
        return []
    if entry["cursor"] >= rev.seq:
        kind, detail = ("admitted_after_revocation",
                        f"admitted with allowlist cursor {entry['cursor']}, which carried the "
                        f"revocation at {rev.seq}")
    else:
        revoked_at = rev.record.get("revoked_at")
        if revoked_at is None or _utc(entry["at"]) < from_iso(revoked_at):
            return []
        kind, detail = ("admitted_before_revocation_known",
                        f"admitted after the refund, before the venue had synced it (cursor "
                        f"{entry['cursor']} < {rev.seq})")
    _record(conn, kind, entry["ticket_id"], [entry["id"]], detail, now)
    return [kind]


def _record(conn, kind, ticket_id, entry_ids, detail, now) -> None:
    conn.execute(sa.insert(conflicts).values(kind=kind, ticket_id=ticket_id, entry_ids=entry_ids,
                                             detail=detail[:400], detected_at=now))


# -- reviewing conflicts --------------------------------------------------------------------

MAX_NOTE = 1000


class OpsError(HubError):
    """A refused review of a conflict."""

    codes = {
        "note_missing": Code(422, "a review needs a note saying what was found or done"),
        "note_too_long": Code(422, "a note is at most %(limit)s characters"),
        "unknown_conflict": Code(404, "no conflict %(conflict_id)s"),
    }


def conflict_list(conn: sa.Connection, reviewed: bool | None = None, limit: int = 200
                  ) -> list[dict[str, Any]]:
    """Conflicts, newest first, each with its ticket and the entries involved."""
    q = sa.select(conflicts).order_by(conflicts.c.id.desc()).limit(limit)
    if reviewed is not None:
        q = q.where(conflicts.c.reviewed_at.is_not(None) if reviewed
                    else conflicts.c.reviewed_at.is_(None))
    rows = conn.execute(q).all()
    entry_ids = {e for r in rows for e in r.entry_ids}
    ticket_ids = {r.ticket_id for r in rows}
    found = {e.id: e for e in conn.execute(
        sa.select(entries.c.id, entries.c.at, entries.c.appliance_id, entries.c.venue_id,
                  entries.c.lane, entries.c.direction, entries.c.admitted, entries.c.reason,
                  entries.c.cursor, entries.c.session_id, entries.c.kind, entries.c.staff,
                  appliances.c.name.label("appliance"))
        .join(appliances, appliances.c.id == entries.c.appliance_id)
        .where(entries.c.id.in_(entry_ids)))} if entry_ids else {}
    ticket_rows = {t.id: t for t in conn.execute(
        sa.select(tickets.c.id, tickets.c.number, tickets.c.kind, tickets.c.state)
        .where(tickets.c.id.in_(ticket_ids)))} if ticket_ids else {}
    out = []
    for r in rows:
        t = ticket_rows.get(r.ticket_id)
        out.append({
            "id": r.id, "kind": r.kind, "detail": r.detail,
            "detected_at": iso(r.detected_at), "reviewed_at": iso(r.reviewed_at),
            "reviewed_by": r.reviewed_by, "note": r.note,
            "ticket": {"id": r.ticket_id, "number": t.number if t else None,
                       "kind": t.kind if t else None, "state": t.state if t else None},
            "entries": [{"id": e.id, "at": iso(e.at), "appliance_id": e.appliance_id,
                         "appliance": e.appliance, "venue_id": e.venue_id, "lane": e.lane,
                         "direction": e.direction, "admitted": e.admitted,
                         "reason": e.reason, "cursor": e.cursor, "session_id": e.session_id,
                         "by_number": e.kind == MANUAL, "staff": e.staff}
                        for e in sorted((found[i] for i in r.entry_ids if i in found),
                                        key=lambda e: (as_utc(e.at), e.id))]})
    return out


def review_conflict(conn: sa.Connection, conflict_id: int, note: str, actor: str,
                    now: datetime | None = None) -> None:
    """Mark a conflict reviewed with a note; audited. Reviewing again replaces the note."""
    note = (note or "").strip()
    if not note:
        raise OpsError("note_missing")
    if len(note) > MAX_NOTE:
        raise OpsError("note_too_long", limit=MAX_NOTE)
    row = conn.execute(sa.select(conflicts.c.reviewed_at, conflicts.c.reviewed_by,
                                 conflicts.c.note)
                       .where(conflicts.c.id == conflict_id).with_for_update()).first()
    if row is None:
        raise OpsError("unknown_conflict", conflict_id=conflict_id)
    now = now or utcnow()
    conn.execute(sa.update(conflicts).where(conflicts.c.id == conflict_id)
                 .values(reviewed_at=now, reviewed_by=actor, note=note))
    record(conn, actor, "conflict.review", f"conflict:{conflict_id}",
           {"reviewed_at": iso(row.reviewed_at), "reviewed_by": row.reviewed_by,
            "note": row.note},
           {"reviewed_at": to_iso(now), "reviewed_by": actor, "note": note})


def unreviewed_conflicts(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(conflicts)
                            .where(conflicts.c.reviewed_at.is_(None))).scalar_one())
