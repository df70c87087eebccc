"""Commands from the web pages to the gate runtime, through the ``device_commands`` table.

The database is the only bus between the appliance's processes: the web process writes a
command, the gate runtime (which owns the devices) carries it out and writes the result back.

Both sides are here. The pages queue with :func:`request_test` and :func:`request_open` and
read with :func:`get_command`, :func:`recent_commands` and :func:`pending_openings`; the
runtime (``edge/gates/``):

1. takes the oldest pending commands that have not expired with :func:`take` (each row is
   claimed by one conditional UPDATE, ``status = 'pending' AND expires_at > now``: a command
   taken twice, or after it expired, is not);
2. does each, then records its outcome with :func:`finish` (``done`` or ``failed``, and a
   result).

A command nobody took before ``expires_at`` is never carried out: opening a lane a minute late
would let the wrong person through. ``result`` is a JSON object; the keys the pages show are
``message`` (text), ``ok`` (bool), ``uid`` (a card read), ``scan`` (a code read), ``document``
(a masked document), ``snapshot_png`` (base64 PNG, for a camera test, with the decoded codes
outlined) and ``codes`` (the texts decoded from it).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from edge import audit
from edge.db import immediate
from sync.timeutil import from_iso, to_iso, utcnow

# device kind -> the test the runtime performs for it
DEVICE_KINDS: dict[str, str] = {
    "turnstile": "pulse",          # unlock the lane for one passage and report the passage input
    "qr_camera": "snapshot",       # one frame, decoded, with the codes found outlined
    "barcode_scanner": "read_scan",  # wait for one scan and report its text
    "rfid_reader": "read_uid",     # wait for a card and report its UID
    "id_reader": "read_document",  # wait for an ID card and report it masked
}
TEST_TTL = timedelta(seconds=60)
OPEN_TTL = timedelta(seconds=10)


class CommandError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def request_test(conn: sqlite3.Connection, device_id: str, actor: str,
                 now: datetime | None = None) -> int:
    now = now or utcnow()
    with immediate(conn):
        row = conn.execute("SELECT kind, enabled FROM devices WHERE id = ?",
                           (device_id,)).fetchone()
        if row is None:
            raise CommandError("not_found", f"no device {device_id!r}")
        kind, enabled = row
        if not enabled:
            raise CommandError("disabled", "the device is disabled: enable it to test it")
        action = DEVICE_KINDS.get(kind, "probe")
        cid = conn.execute(
            "INSERT INTO device_commands (created_at, expires_at, actor, command, device_id, "
            "args) VALUES (?, ?, ?, 'test', ?, ?)",
            (to_iso(now), to_iso(now + TEST_TTL), actor, device_id,
             json.dumps({"action": action}))).lastrowid
        audit.record(conn, actor, "device.test", f"device:{device_id}",
                     {"command": cid, "action": action})
    return cid


def request_open(conn: sqlite3.Connection, lane_id: int, actor: str, args: dict[str, Any],
                 now: datetime | None = None) -> int:
    """Ask the runtime to open ``lane_id`` once; inside the caller's transaction."""
    now = now or utcnow()
    return conn.execute(
        "INSERT INTO device_commands (created_at, expires_at, actor, command, lane_id, args) "
        "VALUES (?, ?, ?, 'open_lane', ?, ?)",
        (to_iso(now), to_iso(now + OPEN_TTL), actor, lane_id,
         json.dumps(args, ensure_ascii=False, sort_keys=True))).lastrowid


def command_view(row: tuple, now: datetime | None = None) -> dict:
    cid, created_at, expires_at, actor, command, device_id, lane_id, args, status, taken_at, \
        done_at, result = row
    now = now or utcnow()
    shown = status
    if status == "pending" and from_iso(expires_at) <= now:
        shown = "expired"
    return {"id": cid, "created_at": created_at, "expires_at": expires_at, "actor": actor,
            "command": command, "device_id": device_id, "lane_id": lane_id,
            "args": json.loads(args or "{}"), "status": shown, "taken_at": taken_at,
            "done_at": done_at, "result": json.loads(result) if result else None}


_COLUMNS = ("id, created_at, expires_at, actor, command, device_id, lane_id, args, status, "
            "taken_at, done_at, result")


def get_command(conn: sqlite3.Connection, cid: int) -> dict | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM device_commands WHERE id = ?",
                       (cid,)).fetchone()
    return command_view(row) if row else None


def recent_commands(conn: sqlite3.Connection, device_id: str | None = None,
                    limit: int = 10) -> list[dict]:
    if device_id is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM device_commands ORDER BY id DESC LIMIT ?",
                            (limit,))
    else:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM device_commands WHERE device_id = ? "
                            "ORDER BY id DESC LIMIT ?", (device_id, limit))
    return [command_view(r) for r in rows]


# -- the gate runtime's side ---------------------------------------------------------------------


def take(conn: sqlite3.Connection, now: datetime | None = None, limit: int = 20) -> list[dict]:
    """Claim the oldest pending commands that have not expired (``status`` -> ``running``);
    each as ``id``, ``command``, ``device_id``, ``lane_id``, ``args`` (a dict, empty when the
    stored one is not a JSON object) and ``actor``. An expired command is left pending, never
    carried out: opening a lane late would admit the wrong person."""
    now = now or utcnow()
    rows = conn.execute(
        "SELECT id, command, device_id, lane_id, args, actor, expires_at FROM "
        "device_commands WHERE status = 'pending' ORDER BY id LIMIT ?", (limit,)).fetchall()
    taken = []
    for cid, command, device_id, lane_id, args, actor, expires_at in rows:
        if from_iso(expires_at) <= now:
            continue
        if not conn.execute(
                "UPDATE device_commands SET status = 'running', taken_at = ? WHERE id = ? "
                "AND status = 'pending' AND expires_at > ?",
                (to_iso(now), cid, to_iso(now))).rowcount:
            continue
        try:
            parsed = json.loads(args or "{}")
        except ValueError:
            parsed = {}
        taken.append({"id": cid, "command": command, "device_id": device_id,
                      "lane_id": lane_id, "args": parsed if isinstance(parsed, dict) else {},
                      "actor": actor})
    return taken


def finish(conn: sqlite3.Connection, cid: int, status: str, result: dict[str, Any],
           now: datetime | None = None) -> None:
    """Record what came of a command: ``status`` ``done`` or ``failed``, and its result (see
    the keys above)."""
    conn.execute(
        "UPDATE device_commands SET status = ?, done_at = ?, result = ? WHERE id = ?",
        (status, to_iso(now or utcnow()), json.dumps(result, ensure_ascii=False), cid))


def pending_openings(conn: sqlite3.Connection, entry_ids: Iterable[str],
                     now: datetime | None = None) -> set[str]:
    """Of these entries, those whose lane's opening is still to come: an ``open_lane``
    command for the entry at its lane, waiting or being carried out, and not expired (one
    that expired waiting is never carried out, so nothing is pending any more)."""
    ids = list(dict.fromkeys(entry_ids))
    if not ids:
        return set()
    rows = conn.execute(
        f"""SELECT e.id FROM entries e WHERE e.id IN ({','.join('?' * len(ids))}) AND EXISTS (
                SELECT 1 FROM device_commands c WHERE c.command = 'open_lane'
                AND c.lane_id = e.lane_id AND c.status IN ('pending', 'running')
                AND c.expires_at > ? AND json_extract(c.args, '$.entry_id') = e.id)""",
        [*ids, to_iso(now or utcnow())])
    return {entry_id for (entry_id,) in rows}
