"""What the appliance is doing right now, for the dashboard: entries per lane and gate in the
last minutes, people inside, device health and the state of the sync with the hub.

Plain functions on a connection; every figure is read in one transaction so the numbers on the
screen agree with each other. Nothing here returns personal data.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from edge.db import UNACKED
from sync.timeutil import from_iso, to_iso, utcnow

RECENT_ROWS = 50_000  # the dashboard looks at no more than this many of the newest entries
# a device not reported for longer is shown as not reporting: the gate runtime reports each
# running device every 20 s (edge/gates/runtime.py BEAT_S), a handheld with each contact
DEVICE_SILENT = timedelta(seconds=90)


def venue_tz(conn: sqlite3.Connection) -> ZoneInfo:
    row = conn.execute("SELECT timezone FROM venue LIMIT 1").fetchone()
    return ZoneInfo(row[0] if row and row[0] else "UTC")


def dashboard(conn: sqlite3.Connection, minutes: int = 15, now: datetime | None = None) -> dict:
    now = now or utcnow()
    since = to_iso(now - timedelta(minutes=minutes))
    conn.execute("BEGIN")
    try:
        lanes = _per_lane(conn, since)
        gates: dict[str, dict] = {}
        for lane in lanes:
            gate = gates.setdefault(lane["gate"] or "-", {"gate": lane["gate"] or "-",
                                                          "gate_name": lane["gate_name"],
                                                          "admitted": 0, "refused": 0})
            gate["admitted"] += lane["admitted"]
            gate["refused"] += lane["refused"]
        result = {
            "at": to_iso(now),
            "minutes": minutes,
            "lanes": lanes,
            "gates": sorted(gates.values(), key=lambda g: g["gate"]),
            "inside": people_inside(conn, now),
            "devices": devices(conn, now),
            "sync": sync_status(conn, now),
        }
    finally:
        conn.execute("ROLLBACK")
    return result


def _per_lane(conn: sqlite3.Connection, since: str) -> list[dict]:
    counts = {row[0]: (row[1], row[2]) for row in conn.execute(
        f"""SELECT lane_id, sum(admitted), sum(1 - admitted)
            FROM (SELECT lane_id, admitted, at FROM entries ORDER BY seq DESC
                  LIMIT {RECENT_ROWS})
            WHERE at >= ? GROUP BY lane_id""", (since,))}
    out = []
    for lane_id, code, name, direction, enabled, gate, gate_name in conn.execute(
            "SELECT l.id, l.code, l.name, l.direction, l.enabled, g.code, g.name FROM lanes l "
            "LEFT JOIN gates g ON g.id = l.gate_id ORDER BY l.code"):
        admitted, refused = counts.get(lane_id, (0, 0))
        out.append({"lane": code, "name": name, "direction": direction,
                    "enabled": bool(enabled), "gate": gate, "gate_name": gate_name,
                    "admitted": admitted or 0, "refused": refused or 0})
    return out


def people_inside(conn: sqlite3.Connection, now: datetime) -> int:
    """Tickets whose last admitted movement today (venue time) went in."""
    day = now.astimezone(venue_tz(conn)).date().isoformat()
    (inside,) = conn.execute(
        """SELECT count(*) FROM (
               SELECT direction, max(seq) FROM entries
               WHERE admitted = 1 AND ticket_id IS NOT NULL AND day = ?
               GROUP BY ticket_id)
           WHERE direction = 'in'""", (day,)).fetchone()
    return inside


def devices(conn: sqlite3.Connection, now: datetime, lane: str | None = None,
            kind: str | None = None) -> list[dict]:
    """Every device (or only those of the lane coded ``lane``, of kind ``kind``) as last
    reported, by id; ``silent``: enabled but not reported for :data:`DEVICE_SILENT`."""
    where = [f for f, v in (("l.code = ?", lane), ("d.kind = ?", kind)) if v is not None]
    args = [v for v in (lane, kind) if v is not None]
    out = []
    for dev_id, kind_, name, enabled, state, detail, state_at, lane_, seen_at in conn.execute(
            "SELECT d.id, d.kind, d.name, d.enabled, d.state, d.state_detail, d.state_at, "
            "l.code, max(coalesce(d.seen_at, ''), coalesce(d.state_at, '')) FROM devices d "
            "LEFT JOIN lanes l ON l.id = d.lane_id "
            f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY d.id", args):
        silent = bool(enabled) and (not seen_at or now - from_iso(seen_at) > DEVICE_SILENT)
        out.append({"id": dev_id, "kind": kind_, "name": name, "enabled": bool(enabled),
                    "state": state if enabled else "disabled", "detail": detail or "",
                    "state_at": state_at, "lane": lane_, "silent": silent})
    return out


def sync_status(conn: sqlite3.Connection, now: datetime) -> dict:
    streams = []
    for stream, cursor, last_ok_at, detail in conn.execute(
            "SELECT stream, cursor, last_ok_at, detail FROM sync_state ORDER BY stream"):
        lag = (now - from_iso(last_ok_at)).total_seconds() if last_ok_at else None
        streams.append({"stream": stream, "cursor": cursor, "last_ok_at": last_ok_at,
                        "lag_s": lag, "detail": detail})
    queued, refused, conflicts, last_ack = conn.execute(
        "SELECT count(*) - count(acked_at), "
        "count(*) FILTER (WHERE ack_status = 'refused'), "
        "count(*) FILTER (WHERE ack_status = 'conflict'), max(acked_at) FROM entries"
    ).fetchone()
    oldest = conn.execute(f"SELECT at FROM entries WHERE {UNACKED} ORDER BY seq LIMIT 1"
                          ).fetchone()
    down = next((s["last_ok_at"] for s in streams if s["stream"] == "allowlist"), None)
    up = next((s["last_ok_at"] for s in streams if s["stream"] == "entries"), None) or last_ack
    offset = conn.execute("SELECT value FROM appliance_state WHERE key = 'clock_offset_ms'"
                          ).fetchone()
    return {
        "streams": streams,
        "last_down_at": down,
        "last_up_at": up,
        "down_lag_s": (now - from_iso(down)).total_seconds() if down else None,
        "up_lag_s": (now - from_iso(up)).total_seconds() if up else None,
        "queued": queued,
        "oldest_queued_at": oldest[0] if oldest else None,
        "refused": refused,
        "refused_by_reason": [{"reason": r, "count": n} for r, n in conn.execute(
            "SELECT coalesce(ack_reason, 'refused'), count(*) FROM entries "
            "WHERE ack_status = 'refused' GROUP BY 1 ORDER BY 2 DESC, 1")],
        "conflicts": conflicts,
        "clock_offset_ms": int(offset[0]) if offset else None,
    }
