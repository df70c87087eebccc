"""Central ops' view of the appliances: online or not, sync lag each way, queued and refused
entries, clock skew, version and devices (from what each last reported, ``cloud/fleet/report.py``),
and which gates are online."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cloud.catalog.tables import gates, venues
from cloud.core.changes import change_log
from cloud.fleet.report import read_report
from cloud.fleet.tables import appliances
from cloud.ops.attendance import as_utc, iso, lane_map, minute_of
from cloud.ops.tables import entry_minutes
from sync.timeutil import utcnow

DEVICE_UP = "up"
ACTIVE_GATE = timedelta(minutes=10)
LAG_COUNT_CAP = 100_000


def appliance_status(conn: sa.Connection, now: datetime | None = None,
                     offline_after: timedelta = timedelta(minutes=5)) -> list[dict[str, Any]]:
    """Every enrolled appliance: online or not by the age of its last contact, sync lag each
    way, queued and refused entries, clock skew, version, and each device it reports."""
    now = now or utcnow()
    rows = conn.execute(
        sa.select(appliances, venues.c.name.label("venue"))
        .join(venues, venues.c.id == appliances.c.venue_id)
        .where(appliances.c.state != "pending")
        .order_by(appliances.c.venue_id, appliances.c.id)).all()
    lane_of = lane_map(conn, {r.venue_id for r in rows})
    gate_names = dict(conn.execute(sa.select(gates.c.id, gates.c.name)).all()) if rows else {}
    out = []
    for r in rows:
        rep = read_report(r.reported)
        age = (now - as_utc(r.last_seen_at)).total_seconds() if r.last_seen_at else None
        lag_down = lag_down_changes = None
        if rep.allowlist_cursor is not None:
            missing = (sa.select(change_log.c.seq, change_log.c.created_at)
                       .where(change_log.c.venue_id == r.venue_id,
                              change_log.c.seq > rep.allowlist_cursor)
                       .order_by(change_log.c.seq))
            oldest = conn.execute(missing.limit(1)).first()
            # counted up to LAG_COUNT_CAP: an appliance far behind must not slow the page
            lag_down_changes = int(conn.execute(sa.select(sa.func.count()).select_from(
                missing.limit(LAG_COUNT_CAP).subquery())).scalar_one()) if oldest else 0
            lag_down = (max(0.0, (now - as_utc(oldest.created_at)).total_seconds())
                        if oldest else 0.0)
        lag_up = None
        if rep.queued is not None:
            lag_up = (max(0.0, (now - rep.oldest_queued_at).total_seconds())
                      if rep.queued and rep.oldest_queued_at else 0.0)
        devices = []
        for d in rep.devices:
            lane = lane_of.get((r.venue_id, d.lane)) if d.lane else None
            devices.append({**d.__dict__, "gate_id": lane.gate_id if lane else None,
                            "gate": gate_names.get(lane.gate_id) if lane else None})
        out.append({
            "id": r.id, "name": r.name, "venue_id": r.venue_id, "venue": r.venue,
            "state": r.state, "last_seen_at": iso(r.last_seen_at),
            "heartbeat_age_s": round(age, 1) if age is not None else None,
            "online": r.state == "active" and age is not None
            and age <= offline_after.total_seconds(),
            "version": rep.version,
            "clock_skew_s": r.clock_skew_ms / 1000 if r.clock_skew_ms is not None else None,
            "queued": rep.queued, "refused": rep.refused,
            "lag_down_s": round(lag_down, 1) if lag_down is not None else None,
            "lag_down_changes": lag_down_changes,
            "lag_up_s": round(lag_up, 1) if lag_up is not None else None,
            "devices": devices})
    return out


def gates_online(conn: sa.Connection, status: list[dict[str, Any]],
                 now: datetime | None = None) -> list[dict[str, Any]]:
    """Per venue: its gates, and how many are online. A gate is online when an online
    appliance reports a device up on one of its lanes, or — for appliances that do not say
    which lane a device serves — when one of its lanes scanned within ACTIVE_GATE while an
    appliance of the venue is online."""
    now = now or utcnow()
    online_gates: dict[int, set[int]] = defaultdict(set)
    venues_online = {a["venue_id"] for a in status if a["online"]}
    for a in status:
        if a["online"]:
            for d in a["devices"]:
                if d["gate_id"] is not None and d["state"] == DEVICE_UP:
                    online_gates[a["venue_id"]].add(d["gate_id"])
    if venues_online:
        lane_of = lane_map(conn, venues_online)
        em = entry_minutes.c
        for venue_id, lane in conn.execute(
                sa.select(em.venue_id, em.lane).distinct()
                .where(em.minute >= minute_of(now) - ACTIVE_GATE,
                       em.venue_id.in_(venues_online))):
            known = lane_of.get((venue_id, lane))
            if known:
                online_gates[venue_id].add(known.gate_id)
    out = []
    for v in conn.execute(
            sa.select(venues.c.id, venues.c.name, sa.func.count(gates.c.id).label("n"))
            .join(gates, gates.c.venue_id == venues.c.id, isouter=True)
            .group_by(venues.c.id, venues.c.name).order_by(venues.c.id)):
        out.append({"venue_id": v.id, "venue": v.name, "gates": int(v.n),
                    "online": len(online_gates[v.id]),
                    "appliances": sum(1 for a in status if a["venue_id"] == v.id
                                      and a["state"] == "active"),
                    "appliances_online": sum(1 for a in status
                                             if a["venue_id"] == v.id and a["online"])})
    return out
