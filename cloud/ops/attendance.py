"""Central ops: attendance — entries counted as they arrive, and read back per session, gate,
lane and zone for the dashboard. (Appliances and devices: ``devices.py``; conflicts:
``conflicts.py``.)

Attendance is read from ``entry_minutes``, counted per session, venue, lane, zone and minute in
the transaction that stores the entries (:func:`count_entries`, called by the entries push),
so the dashboard sums thousands of small rows instead of scanning millions of entries. A
ticket is *entered* once per session, on its first admission (``entered_tickets`` decides which
one under any concurrency); every admission is an *entry*; *inside* is entries minus exits. A
pass is counted once per entry, in the session it entered.

Lanes lead to gates through the hub's ``lanes`` table, or else through the lanes each appliance
reports in its heartbeat (``appliance_lanes``); an entry's zone is its ticket's zone, or
else the zone of its gate when the gate admits exactly one. Plain functions on a connection;
no Flask.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.catalog.tables import events, gate_zones, gates, lanes, sessions, venues, zones
from cloud.fleet.tables import appliance_lanes, appliances
from cloud.ops.tables import entered_tickets, entry_minutes, session_sold
from cloud.sales.tables import tickets
from sync.names import MANUAL  # the scan kind of a ticket number typed by staff
from sync.timeutil import to_iso, utcnow

RATE_WINDOW = timedelta(minutes=5)   # "entries per minute now" is the mean over this window
CHART_MINUTES = 60
LIVE_BEFORE = timedelta(hours=3)     # a session is live from this long before it starts
LIVE_AFTER = timedelta(hours=2)      # ... until this long after it ends


def as_utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso(dt: datetime | None) -> str | None:
    return to_iso(as_utc(dt)) if dt is not None else None


def minute_of(dt: datetime) -> datetime:
    return as_utc(dt).replace(second=0, microsecond=0)


# ---------------------------------------------------------------------------------------------
# Counting entries as they arrive


@dataclass(frozen=True)
class Lane:
    venue_id: int
    code: str
    gate_id: int
    direction: str
    zone_id: int  # the gate's zone when it admits exactly one, else 0


def lane_map(conn: sa.Connection, venue_ids: Iterable[int] | None = None
             ) -> dict[tuple[int, str], Lane]:
    """(venue id, lane code) -> the lane's gate and, where it has one zone, that zone.

    The hub's own lanes first; then the lanes the venue's active appliances report in their
    heartbeats (``appliance_lanes``), whose gate code is looked up at the appliance's venue. A
    lane the hub defines is never overridden by a report; a reported lane's direction is "in"
    (an entry carries its own direction, which is what the counts use)."""
    q = sa.select(lanes.c.venue_id, lanes.c.code, lanes.c.gate_id, lanes.c.direction)
    al = appliance_lanes.c
    reported = (sa.select(appliances.c.venue_id, al.code, gates.c.id.label("gate_id"))
                .join(appliances, appliances.c.id == al.appliance_id)
                .join(gates, sa.and_(gates.c.venue_id == appliances.c.venue_id,
                                     gates.c.code == al.gate_code))
                .where(appliances.c.state == "active")
                .order_by(al.reported_at, al.appliance_id))
    gz = sa.select(gate_zones.c.gate_id, gate_zones.c.zone_id)
    if venue_ids is not None:
        venue_ids = list(venue_ids)
        q = q.where(lanes.c.venue_id.in_(venue_ids))
        reported = reported.where(appliances.c.venue_id.in_(venue_ids))
        gz = gz.join(gates, gates.c.id == gate_zones.c.gate_id).where(
            gates.c.venue_id.in_(venue_ids))
    zones_of: dict[int, list[int]] = defaultdict(list)
    for gate_id, zone_id in conn.execute(gz):
        zones_of[gate_id].append(zone_id)

    def lane(venue_id: int, code: str, gate_id: int, direction: str) -> Lane:
        return Lane(venue_id, code, gate_id, direction,
                    zones_of[gate_id][0] if len(zones_of[gate_id]) == 1 else 0)

    out = {(r.venue_id, r.code): lane(r.venue_id, r.code, r.gate_id, "in")
           for r in conn.execute(reported)}  # the latest report of a code wins
    out.update({(r.venue_id, r.code): lane(r.venue_id, r.code, r.gate_id, r.direction)
                for r in conn.execute(q)})
    return out


def _insert(conn: sa.Connection, table: sa.Table):
    return (postgresql.insert(table) if conn.dialect.name == "postgresql"
            else sqlite.insert(table))


def count_entries(conn: sa.Connection, venue_id: int, batch: list[dict[str, Any]],
                  stored_ids: Iterable[str]) -> None:
    """Add newly stored entries to the ops counters, in the caller's transaction.

    ``batch`` is the checked push batch and ``stored_ids`` the ids that were new: a resent or
    duplicate entry is never counted twice. Rows are written in key order, so concurrent
    pushes never wait on each other in a circle.
    """
    wanted = set(stored_ids)
    new: dict[str, dict[str, Any]] = {}
    for e in batch:
        if e["id"] in wanted:
            new.setdefault(e["id"], e)  # the first occurrence is the one that was stored
    if not new:
        return
    ticket_ids = {e["ticket_id"] for e in new.values() if e["ticket_id"] is not None}
    ticket_zone = dict(conn.execute(sa.select(tickets.c.id, tickets.c.zone_id)
                                    .where(tickets.c.id.in_(ticket_ids))).all()
                       ) if ticket_ids else {}
    lane_of = lane_map(conn, [venue_id])

    # which admissions are their ticket's first in the session: the primary key decides
    first: dict[tuple[int, int], str] = {}
    for e in sorted(new.values(), key=lambda e: (as_utc(e["at"]), e["id"])):
        if (e["admitted"] and e["direction"] == "in" and e["ticket_id"] is not None
                and e["session_id"]):
            first.setdefault((e["session_id"], e["ticket_id"]), e["id"])
    firsts: set[str] = set()
    if first:
        rows = [{"session_id": s, "ticket_id": t, "entry_id": first[(s, t)]}
                for s, t in sorted(first)]
        # many parameter sets for one statement, not one statement with many rows: the
        # statement is compiled once and cached
        ins = _insert(conn, entered_tickets).on_conflict_do_nothing(
            index_elements=["session_id", "ticket_id"]).returning(entered_tickets.c.entry_id)
        firsts = set(conn.execute(ins, rows).scalars().all())

    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for e in new.values():
        lane = e["lane"] or ""
        zone = ticket_zone.get(e["ticket_id"]) or 0
        if not zone and (venue_id, lane) in lane_of:
            zone = lane_of[(venue_id, lane)].zone_id
        c = counts[(e["session_id"] or 0, venue_id, lane, zone, minute_of(e["at"]))]
        if not e["admitted"]:
            c[2] += 1
        elif e["direction"] == "out":
            c[1] += 1
        else:
            c[0] += 1
            c[3] += e["id"] in firsts
            c[4] += e.get("kind") == MANUAL  # admitted on a ticket number typed by staff
    rows = [{"session_id": k[0], "venue_id": k[1], "lane": k[2], "zone_id": k[3],
             "minute": k[4], "admitted_in": c[0], "admitted_out": c[1], "refused": c[2],
             "first_in": c[3], "manual_in": c[4]} for k, c in sorted(counts.items())]
    ins = _insert(conn, entry_minutes)
    conn.execute(ins.on_conflict_do_update(
        index_elements=["session_id", "venue_id", "lane", "zone_id", "minute"],
        set_={col: entry_minutes.c[col] + ins.excluded[col]
              for col in ("admitted_in", "admitted_out", "refused", "first_in", "manual_in")}),
        rows)


# ---------------------------------------------------------------------------------------------
# Attendance


def live_sessions(conn: sa.Connection, now: datetime | None = None) -> list[int]:
    """Sessions whose gates are open, about to open, or that ended a short while ago."""
    now = now or utcnow()
    return list(conn.execute(
        sa.select(sessions.c.id).where(sessions.c.starts_at <= now + LIVE_BEFORE,
                                       sessions.c.ends_at >= now - LIVE_AFTER)
        .order_by(sessions.c.starts_at, sessions.c.id)).scalars())


def session_choices(conn: sa.Connection, limit: int = 200) -> list[dict[str, Any]]:
    """Sessions and events to choose from on the dashboard, newest first."""
    rows = conn.execute(
        sa.select(sessions.c.id, sessions.c.name, sessions.c.starts_at, events.c.id.label("eid"),
                  events.c.name.label("event"), venues.c.name.label("venue"))
        .join(events, events.c.id == sessions.c.event_id)
        .join(venues, venues.c.id == sessions.c.venue_id)
        .order_by(sessions.c.starts_at.desc(), sessions.c.id.desc()).limit(limit))
    return [{"id": r.id, "name": r.name, "starts_at": iso(r.starts_at), "event_id": r.eid,
             "event": r.event, "venue": r.venue} for r in rows]


def event_sessions(conn: sa.Connection, event_id: int) -> list[int]:
    return list(conn.execute(sa.select(sessions.c.id).where(sessions.c.event_id == event_id)
                             .order_by(sessions.c.starts_at)).scalars())


def _numbers() -> dict[str, int]:
    return {"entered": 0, "entries": 0, "exits": 0, "inside": 0, "refused": 0, "by_number": 0}


def _add(into: dict[str, Any], r: Any) -> None:
    into["entered"] += int(r.first_in or 0)
    into["entries"] += int(r.admitted_in or 0)
    into["exits"] += int(r.admitted_out or 0)
    into["inside"] += int(r.admitted_in or 0) - int(r.admitted_out or 0)
    into["refused"] += int(r.refused or 0)
    into["by_number"] += int(r.manual_in or 0)


def sold_counts(conn: sa.Connection, session_rows: list[Any]) -> dict[int, dict[str, int]]:
    """Live (issued) tickets per session, and the passes that admit to it."""
    ids = [s.id for s in session_rows]
    out = {sid: {"sold": 0, "passes": 0} for sid in ids}
    for sid, n in conn.execute(sa.select(session_sold.c.session_id, session_sold.c.sold)
                               .where(session_sold.c.session_id.in_(ids))):
        out[sid]["sold"] = int(n)
    passes = conn.execute(sa.select(tickets.c.kind, tickets.c.scope, tickets.c.venues,
                                    tickets.c.valid_from, tickets.c.valid_until)
                          .where(tickets.c.session_id.is_(None), tickets.c.state == "issued",
                                 tickets.c.role != "staff")).all()
    for s in session_rows:
        for p in passes:
            if p.kind == "sessions":
                covers = s.id in p.scope
            else:  # a venue pass: its venue, with a validity window that meets the session
                covers = (s.venue_id in p.venues and as_utc(p.valid_from) < as_utc(s.ends_at)
                          and as_utc(p.valid_until) > as_utc(s.starts_at))
            out[s.id]["passes"] += covers
    return out


def attendance(conn: sa.Connection, session_ids: list[int], now: datetime | None = None,
               minutes: int = CHART_MINUTES) -> dict[str, Any]:
    """Numbers for these sessions: each session, the totals, by venue, by zone and by gate,
    and entries per minute for the last ``minutes`` minutes (one point per minute, zeros
    included)."""
    now = now or utcnow()
    session_rows = conn.execute(
        sa.select(sessions, events.c.name.label("event"), venues.c.name.label("venue"))
        .join(events, events.c.id == sessions.c.event_id)
        .join(venues, venues.c.id == sessions.c.venue_id)
        .where(sessions.c.id.in_(session_ids))
        .order_by(sessions.c.starts_at, sessions.c.id)).all()
    read = _Minutes.read(conn, session_rows, now, minutes)
    tally = _Tally.count(conn, session_rows, read)
    sold = sold_counts(conn, session_rows) if read.ids else {}
    out_sessions = []
    totals = {**_numbers(), "sold": 0, "passes": 0, "rate": 0.0}
    for s in session_rows:
        n = {**tally.per_session[s.id], **sold.get(s.id, {"sold": 0, "passes": 0}),
             "rate": round(tally.rate_session[s.id], 1)}
        for k in totals:
            totals[k] += n[k]
        out_sessions.append({
            "id": s.id, "name": s.name, "event_id": s.event_id, "event": s.event,
            "venue_id": s.venue_id, "venue": s.venue, "starts_at": iso(s.starts_at),
            "ends_at": iso(s.ends_at), "gates_open_at": iso(s.gates_open_at), **n})
    totals["rate"] = round(totals["rate"], 1)
    totals["refused"] += sum(int(r.refused or 0) for r in read.sessionless
                             if len(tally.only_session[r.venue_id]) != 1)
    return {"at": to_iso(now), "sessions": out_sessions, "totals": totals,
            **tally.breakdowns(session_rows),
            "rate": [{"minute": to_iso(read.start + timedelta(minutes=i)),
                      "entries": read.series.get(read.start + timedelta(minutes=i), 0)}
                     for i in range(minutes)]}


@dataclass
class _Minutes:
    """The ``entry_minutes`` rows of some sessions, summed as the dashboard needs them."""

    ids: list[int]
    rows: list[Any]
    sessionless: list[Any]
    recent: list[Any]
    series: dict[datetime, int]
    spans: dict[int, list[datetime]]
    start: datetime

    @classmethod
    def read(cls, conn: sa.Connection, session_rows: list[Any], now: datetime,
             minutes: int) -> _Minutes:
        ids = [s.id for s in session_rows]
        em = entry_minutes.c
        sums = [sa.func.sum(em.admitted_in).label("admitted_in"),
                sa.func.sum(em.admitted_out).label("admitted_out"),
                sa.func.sum(em.refused).label("refused"),
                sa.func.sum(em.first_in).label("first_in"),
                sa.func.sum(em.manual_in).label("manual_in")]
        rows = conn.execute(sa.select(em.session_id, em.venue_id, em.lane, em.zone_id, *sums)
                            .where(em.session_id.in_(ids))
                            .group_by(em.session_id, em.venue_id, em.lane, em.zone_id)).all(
                            ) if ids else []
        # scans refused before any session was known (unknown or forged codes, a ticket of no
        # session) count where they happened: at the venues shown, while their sessions are live
        spans: dict[int, list[datetime]] = {}
        for s in session_rows:
            lo, hi = as_utc(s.starts_at) - LIVE_BEFORE, as_utc(s.ends_at) + LIVE_AFTER
            span = spans.setdefault(s.venue_id, [lo, hi])
            span[0], span[1] = min(span[0], lo), max(span[1], hi)
        sessionless = conn.execute(
            sa.select(em.venue_id, em.lane, em.zone_id, sa.func.sum(em.refused).label("refused"))
            .where(em.session_id == 0, sa.or_(*(
                sa.and_(em.venue_id == venue_id, em.minute >= lo, em.minute <= hi)
                for venue_id, (lo, hi) in spans.items())))
            .group_by(em.venue_id, em.lane, em.zone_id)).all() if spans else []
        since_rate = minute_of(now) - RATE_WINDOW + timedelta(minutes=1)
        recent = conn.execute(sa.select(em.session_id, em.venue_id, em.lane,
                                        sa.func.sum(em.admitted_in).label("n"))
                              .where(em.session_id.in_(ids), em.minute >= since_rate)
                              .group_by(em.session_id, em.venue_id, em.lane)).all(
                              ) if ids else []
        start = minute_of(now) - timedelta(minutes=minutes - 1)
        series = {minute_of(m): int(n or 0) for m, n in conn.execute(
            sa.select(em.minute, sa.func.sum(em.admitted_in)).where(
                em.session_id.in_(ids), em.minute >= start).group_by(em.minute))} if ids else {}
        return cls(ids, rows, sessionless, recent, series, spans, start)


@dataclass
class _Tally:
    """The minutes added up per session, venue, zone and gate, with entries per minute now."""

    lane_of: dict[tuple[int, str], Lane]
    gate_rows: dict[int, Any]
    zone_rows: dict[int, Any]
    only_session: dict[int, list[int]]
    per_session: dict[int, dict[str, Any]]
    by_venue: dict[int, dict[str, Any]] = field(default_factory=dict)
    by_zone: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    by_gate: dict[tuple[int, int | None, str], dict[str, Any]] = field(default_factory=dict)
    rate_session: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    rate_venue: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    rate_gate: dict[tuple, float] = field(default_factory=lambda: defaultdict(float))

    @classmethod
    def count(cls, conn: sa.Connection, session_rows: list[Any], read: _Minutes) -> _Tally:
        venue_ids = sorted({s.venue_id for s in session_rows})
        tally = cls(
            lane_of=lane_map(conn, venue_ids),
            gate_rows={g.id: g for g in conn.execute(
                sa.select(gates.c.id, gates.c.venue_id, gates.c.code, gates.c.name)
                .where(gates.c.venue_id.in_(venue_ids)))},
            zone_rows={z.id: z for z in conn.execute(
                sa.select(zones.c.id, zones.c.code, zones.c.name)
                .where(zones.c.venue_id.in_(venue_ids)))},
            only_session={v: [s.id for s in session_rows if s.venue_id == v]
                          for v in read.spans},
            per_session={s.id: _numbers() for s in session_rows})
        for r in read.rows:
            _add(tally.per_session[r.session_id], r)
            _add(tally.by_venue.setdefault(r.venue_id, _numbers()), r)
            _add(tally.by_zone.setdefault((r.venue_id, r.zone_id), _numbers()), r)
            _add(tally.by_gate.setdefault(tally.gate_key(r.venue_id, r.lane), _numbers()), r)
        for r in read.sessionless:
            n = int(r.refused or 0)
            if len(tally.only_session[r.venue_id]) == 1:
                tally.per_session[tally.only_session[r.venue_id][0]]["refused"] += n
            tally.by_venue.setdefault(r.venue_id, _numbers())["refused"] += n
            tally.by_zone.setdefault((r.venue_id, r.zone_id), _numbers())["refused"] += n
            tally.by_gate.setdefault(tally.gate_key(r.venue_id, r.lane), _numbers()
                                     )["refused"] += n
        per_min = RATE_WINDOW.total_seconds() / 60
        for r in read.recent:
            tally.rate_session[r.session_id] += int(r.n or 0) / per_min
            tally.rate_venue[r.venue_id] += int(r.n or 0) / per_min
            tally.rate_gate[tally.gate_key(r.venue_id, r.lane)] += int(r.n or 0) / per_min
        return tally

    def gate_key(self, venue_id: int, lane: str) -> tuple[int, int | None, str]:
        known = self.lane_of.get((venue_id, lane))
        return (venue_id, known.gate_id, "") if known else (venue_id, None, lane)

    def breakdowns(self, session_rows: list[Any]) -> dict[str, list[dict[str, Any]]]:
        venue_name = {s.venue_id: s.venue for s in session_rows}
        return {
            "by_venue": [{"venue_id": v, "venue": venue_name.get(v, str(v)), **n,
                          "rate": round(self.rate_venue[v], 1)}
                         for v, n in sorted(self.by_venue.items())],
            "by_zone": [{"venue_id": v, "venue": venue_name.get(v, str(v)), "zone_id": z or None,
                         "zone": self.zone_rows[z].name if z in self.zone_rows else None, **n}
                        for (v, z), n in sorted(self.by_zone.items())],
            "by_gate": sorted(({"venue_id": k[0], "venue": venue_name.get(k[0], str(k[0])),
                                "gate_id": k[1],
                                "gate": self.gate_rows[k[1]].name if k[1] in self.gate_rows
                                else None,
                                "lane": k[2] or None, **n, "rate": round(self.rate_gate[k], 1)}
                               for k, n in self.by_gate.items()),
                              key=lambda g: (g["venue_id"], g["gate"] or "", g["lane"] or "")),
        }


# ---------------------------------------------------------------------------------------------
# Appliances and devices


# ---------------------------------------------------------------------------------------------
# Conflicts
