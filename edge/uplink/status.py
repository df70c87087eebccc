"""The sync status an operator needs, read from the database: what ``wicket-edge status``
prints and the admin page shows. Nothing here talks to the hub."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from edge.config import Config
from edge.db import UNACKED
from edge.uplink.state import get_state
from sync.timeutil import from_iso, utcnow


def _age_s(at: str | None, now: datetime) -> float | None:
    return None if at is None else round((now - from_iso(at)).total_seconds(), 1)


def status(cfg: Config, conn: sqlite3.Connection) -> dict[str, Any]:
    now = utcnow()
    streams = {}
    for stream, cursor, last_ok, error, error_at in conn.execute(
            "SELECT stream, cursor, last_ok_at, last_error, last_error_at FROM sync_state"):
        failing = error is not None and (last_ok is None or (error_at or "") > last_ok)
        streams[stream] = {"cursor": cursor, "last_ok_at": last_ok,
                           "lag_s": _age_s(last_ok, now),
                           "last_error": error if failing else None,
                           "last_error_at": error_at if failing else None}
    queued, oldest = conn.execute(
        f"SELECT count(*), min(at) FROM entries WHERE {UNACKED}").fetchone()
    refused = dict(conn.execute(
        "SELECT coalesce(ack_reason, 'refused'), count(*) FROM entries "
        "WHERE ack_status = 'refused' GROUP BY 1 ORDER BY 2 DESC").fetchall())
    acked = conn.execute("SELECT count(*) FROM entries WHERE acked_at IS NOT NULL").fetchone()[0]
    offset = get_state(conn, "clock_offset_ms")
    hub_state = get_state(conn, "hub_state")
    return {
        "enrolled": cfg.credential_path.exists(),
        "revoked_at": get_state(conn, "revoked_at"),
        "appliance_id": get_state(conn, "hub_appliance_id"),
        "hub": hub_state or "unknown",
        "hub_down_since": get_state(conn, "hub_down_since"),
        "streams": streams,
        "entries": {"queued": queued, "oldest_queued_at": oldest, "acknowledged": acked,
                    "refused": sum(refused.values()), "refused_by_reason": refused},
        "clock_offset_ms": int(offset) if offset is not None else None,
        "snapshot_started_at": get_state(conn, "snapshot_started_at"),
        "last_snapshot_at": get_state(conn, "last_snapshot_at"),
    }


def render(s: dict[str, Any]) -> str:
    lines = []
    if s["revoked_at"]:
        lines.append(f"REVOKED by the hub at {s['revoked_at']}: personal data wiped, not syncing")
    elif not s["enrolled"]:
        lines.append("not enrolled: run `wicket-edge enroll --hub URL --token TOKEN`")
    hub = s["hub"] + (f" since {s['hub_down_since']}" if s["hub_down_since"] else "")
    lines.append(f"appliance {s['appliance_id'] or '-'}   hub: {hub}")
    for name in ("revocations", "allowlist", "entries", "heartbeat"):
        st = s["streams"].get(name)
        if st is None:
            continue
        lag = f"{st['lag_s']:.0f} s ago" if st["lag_s"] is not None else "never"
        cursor = f"cursor {st['cursor']}" if name in ("allowlist", "revocations") else ""
        line = f"  {name:12} last success {lag:>12}  {cursor}"
        if st["last_error"]:
            line += f"\n  {'':12} failing since {st['last_error_at']}: {st['last_error']}"
        lines.append(line.rstrip())
    e = s["entries"]
    lines.append(f"entries: {e['queued']} queued"
                 + (f" (oldest {e['oldest_queued_at']})" if e["oldest_queued_at"] else "")
                 + f", {e['acknowledged']} acknowledged, {e['refused']} refused by the hub")
    for reason, n in e["refused_by_reason"].items():
        lines.append(f"  refused {n:6}  {reason}")
    if s["clock_offset_ms"] is not None:
        lines.append(f"clock: {s['clock_offset_ms'] / 1000:+.1f} s against the hub")
    if s["snapshot_started_at"]:
        lines.append(f"snapshot in progress since {s['snapshot_started_at']}")
    return "\n".join(lines)
