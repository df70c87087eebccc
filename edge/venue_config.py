"""The one writer of the venue's configuration on the appliance: zones, gates (with their
entry policy), lanes and devices, each change with its audit record in the same transaction.

The hub sends gates, zones and lanes with the allowlist (``edge/allowlist.py`` applies them);
everything else that saves them goes through here: the Venue and Devices pages and the demo.
Plain functions: a connection and values in, the row's id out, or :class:`VenueConfigError`
with a fixed code (and parameters) that the pages put in words. Each opens its own
``BEGIN IMMEDIATE`` transaction, so call them outside one. Names are cut to
:data:`MAX_NAME` characters; every other value that is wrong is refused, never mended.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from typing import Any

from edge import audit
from edge.commands import DEVICE_KINDS  # the kinds an admin adds, with their test
from edge.db import immediate

CODE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")  # zones, gates and lanes
DEVICE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
MAX_NAME = 80
REALNAME_MODES = ("ticket", "ticket_and_id", "id_only")
MAX_MARGIN_MIN = 24 * 60
DIRECTIONS = ("in", "out")
MIN_PASSAGE_TIMEOUT_S, MAX_PASSAGE_TIMEOUT_S = 1, 600
_DEVICE_FIELDS = ("kind", "name", "lane_id", "config", "enabled")


class VenueConfigError(Exception):
    """A change refused. ``code``: ``bad_zone``, ``bad_gate``, ``bad_realname_mode``,
    ``bad_margins``, ``unknown_zone``, ``gate_code_taken``, ``bad_lane_code``,
    ``bad_direction``, ``bad_passage_timeout``, ``unknown_gate``, ``unknown_device``,
    ``lane_code_taken``, ``bad_device_id``, ``bad_device_kind``, ``unknown_lane``,
    ``device_exists``, ``not_found`` (the zone, gate, lane or device to change)."""

    def __init__(self, code: str, /, **params: Any):
        super().__init__(code, params)
        self.code = code
        self.params = params


def _next_id(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0]


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


# -- zones -------------------------------------------------------------------------------------


def save_zone(conn: sqlite3.Connection, actor: str, code: str, name: str,
              zone_id: int | None = None) -> int:
    """Create a zone (``zone_id`` None) or change one; its id."""
    name = name[:MAX_NAME]
    if not CODE.match(code) or not name:
        raise VenueConfigError("bad_zone")
    with immediate(conn):
        if zone_id is None:
            zone_id = _next_id(conn, "zones")
            conn.execute("INSERT INTO zones (id, code, name) VALUES (?, ?, ?)",
                         (zone_id, code, name))
            audit.record(conn, actor, "zone.create", f"zone:{zone_id}",
                         {"code": code, "name": name})
            return zone_id
        before = conn.execute("SELECT code, name FROM zones WHERE id = ?",
                              (zone_id,)).fetchone()
        if before is None:
            raise VenueConfigError("not_found", zone_id=zone_id)
        conn.execute("UPDATE zones SET code = ?, name = ? WHERE id = ?", (code, name, zone_id))
        audit.record(conn, actor, "zone.update", f"zone:{zone_id}",
                     {"before": {"code": before[0], "name": before[1]},
                      "after": {"code": code, "name": name}})
    return zone_id


# -- gates -------------------------------------------------------------------------------------


def gates(conn: sqlite3.Connection) -> list[dict]:
    """Every gate with its entry policy and the zones it admits, by code."""
    out = []
    for row in conn.execute("SELECT id, code, name, reentry, realname_mode, open_before_min, "
                            "close_after_min, manual_entry FROM gates ORDER BY code"):
        zones = [z for (z,) in conn.execute("SELECT zone_id FROM gate_zones WHERE gate_id = ? "
                                            "ORDER BY zone_id", (row[0],))]
        out.append({"id": row[0], "code": row[1], "name": row[2], "reentry": bool(row[3]),
                    "realname_mode": row[4], "open_before_min": row[5],
                    "close_after_min": row[6], "zones": zones, "manual_entry": bool(row[7])})
    return out


def _check_gate(code: str, name: str, realname_mode: str, open_before_min: Any,
                close_after_min: Any) -> None:
    if not CODE.match(code) or not name:
        raise VenueConfigError("bad_gate")
    if realname_mode not in REALNAME_MODES:
        raise VenueConfigError("bad_realname_mode", mode=realname_mode)
    if not (_whole(open_before_min, 0, MAX_MARGIN_MIN)
            and _whole(close_after_min, 0, MAX_MARGIN_MIN)):
        raise VenueConfigError("bad_margins", high=MAX_MARGIN_MIN)


def save_gate(conn: sqlite3.Connection, actor: str, *, code: str, name: str,
              reentry: bool = False, realname_mode: str = "ticket", open_before_min: int,
              close_after_min: int, zones: Iterable[int] = (), manual_entry: bool = False,
              gate_id: int | None = None) -> int:
    """Create a gate (``gate_id`` None) or change one, with its entry policy: the zones it
    admits, re-entry, real-name mode, the margins around a session, admission by number."""
    name = name[:MAX_NAME]
    _check_gate(code, name, realname_mode, open_before_min, close_after_min)
    zones = sorted(set(zones))
    policy = {"code": code, "name": name, "reentry": bool(reentry),
              "realname_mode": realname_mode, "open_before_min": open_before_min,
              "close_after_min": close_after_min, "zones": zones,
              "manual_entry": bool(manual_entry)}
    try:
        with immediate(conn):
            if not set(zones) <= {z for (z,) in conn.execute("SELECT id FROM zones")}:
                raise VenueConfigError("unknown_zone")
            before = None
            if gate_id is None:
                gate_id = _next_id(conn, "gates")
                conn.execute("INSERT INTO gates (id, code, name) VALUES (?, ?, ?)",
                             (gate_id, code, name))
            else:
                before = next((gt for gt in gates(conn) if gt["id"] == gate_id), None)
                if before is None:
                    raise VenueConfigError("not_found", gate_id=gate_id)
                before.pop("id")
            conn.execute("UPDATE gates SET code = ?, name = ?, reentry = ?, realname_mode = ?, "
                         "open_before_min = ?, close_after_min = ?, manual_entry = ? "
                         "WHERE id = ?",
                         (code, name, int(policy["reentry"]), realname_mode, open_before_min,
                          close_after_min, int(policy["manual_entry"]), gate_id))
            conn.execute("DELETE FROM gate_zones WHERE gate_id = ?", (gate_id,))
            conn.executemany("INSERT INTO gate_zones (gate_id, zone_id) VALUES (?, ?)",
                             [(gate_id, z) for z in zones])
            audit.record(conn, actor, "gate.create" if before is None else "gate.update",
                         f"gate:{gate_id}", {"before": before, "after": policy})
    except sqlite3.IntegrityError:
        raise VenueConfigError("gate_code_taken", code=code) from None
    return gate_id


# -- lanes -------------------------------------------------------------------------------------


def lanes(conn: sqlite3.Connection) -> list[dict]:
    """Every lane with its gate, direction, passage timeout and devices, by code."""
    out = []
    for row in conn.execute("SELECT l.id, l.code, l.name, l.gate_id, l.direction, "
                            "l.passage_timeout_s, l.enabled FROM lanes l ORDER BY l.code"):
        devices = [d for (d,) in conn.execute("SELECT id FROM devices WHERE lane_id = ? "
                                              "ORDER BY id", (row[0],))]
        out.append({"id": row[0], "code": row[1], "name": row[2], "gate_id": row[3],
                    "direction": row[4], "passage_timeout_s": row[5],
                    "enabled": bool(row[6]), "devices": devices})
    return out


def _check_lane(conn: sqlite3.Connection, gate_id: int | None, devices: list[str]) -> None:
    if gate_id is None or not conn.execute("SELECT 1 FROM gates WHERE id = ?",
                                           (gate_id,)).fetchone():
        raise VenueConfigError("unknown_gate")
    if not set(devices) <= {d for (d,) in conn.execute("SELECT id FROM devices")}:
        raise VenueConfigError("unknown_device")


def save_lane(conn: sqlite3.Connection, actor: str, *, code: str, gate_id: int | None,
              name: str = "", direction: str = "in", passage_timeout_s: Any,
              enabled: bool = True, devices: Iterable[str] = (),
              lane_id: int | None = None) -> int:
    """Create a lane (``lane_id`` None) or change one: its gate, direction, passage timeout
    and the devices that form it (a device named here leaves its other lane)."""
    name = name[:MAX_NAME]
    if not CODE.match(code):
        raise VenueConfigError("bad_lane_code")
    if direction not in DIRECTIONS:
        raise VenueConfigError("bad_direction", direction=direction)
    if not _whole(passage_timeout_s, MIN_PASSAGE_TIMEOUT_S, MAX_PASSAGE_TIMEOUT_S):
        raise VenueConfigError("bad_passage_timeout", low=MIN_PASSAGE_TIMEOUT_S,
                               high=MAX_PASSAGE_TIMEOUT_S)
    devices = sorted(set(devices))
    lane = {"code": code, "name": name, "gate_id": gate_id, "direction": direction,
            "passage_timeout_s": passage_timeout_s, "enabled": bool(enabled),
            "devices": devices}
    try:
        with immediate(conn):
            _check_lane(conn, gate_id, devices)
            before = None
            if lane_id is None:
                lane_id = _next_id(conn, "lanes")
                conn.execute("INSERT INTO lanes (id, code, gate_id) VALUES (?, ?, ?)",
                             (lane_id, code, gate_id))
            else:
                before = next((ln for ln in lanes(conn) if ln["id"] == lane_id), None)
                if before is None:
                    raise VenueConfigError("not_found", lane_id=lane_id)
                before.pop("id")
            conn.execute("UPDATE lanes SET code = ?, name = ?, gate_id = ?, direction = ?, "
                         "passage_timeout_s = ?, enabled = ? WHERE id = ?",
                         (code, name, gate_id, direction, passage_timeout_s,
                          int(lane["enabled"]), lane_id))
            conn.execute("UPDATE devices SET lane_id = NULL WHERE lane_id = ?", (lane_id,))
            conn.executemany("UPDATE devices SET lane_id = ? WHERE id = ?",
                             [(lane_id, d) for d in devices])
            audit.record(conn, actor, "lane.create" if before is None else "lane.update",
                         f"lane:{lane_id}", {"before": before, "after": lane})
    except sqlite3.IntegrityError:
        raise VenueConfigError("lane_code_taken", code=code) from None
    return lane_id


# -- devices -----------------------------------------------------------------------------------


def device_problems(conn: sqlite3.Connection, device_id: str, kind: str,
                    lane_id: Any) -> list[str]:
    """Every code :func:`create_device` or :func:`update_device` would refuse these with, in
    the order the Devices page lists them (a page shows them all at once)."""
    problems = []
    if not DEVICE_ID.match(device_id):
        problems.append("bad_device_id")
    if kind not in DEVICE_KINDS:
        problems.append("bad_device_kind")
    if lane_id is not None and not (
            _whole(lane_id, 0, 2**63 - 1)
            and conn.execute("SELECT 1 FROM lanes WHERE id = ?", (lane_id,)).fetchone()):
        problems.append("unknown_lane")
    return problems


def _check_device(conn: sqlite3.Connection, device_id: str, kind: str, lane_id: Any) -> None:
    problems = device_problems(conn, device_id, kind, lane_id)
    if problems:
        raise VenueConfigError(problems[0], device_id=device_id)


def create_device(conn: sqlite3.Connection, actor: str, *, device_id: str, kind: str,
                  name: str = "", lane_id: int | None = None,
                  config: dict[str, Any] | None = None, enabled: bool = True) -> None:
    """Add a device for the gate runtime to open (when enabled) at its lane."""
    values = {"kind": kind, "name": name[:MAX_NAME], "lane_id": lane_id,
              "config": dict(config or {}), "enabled": bool(enabled)}
    _check_device(conn, device_id, kind, lane_id)
    with immediate(conn):
        if conn.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone():
            raise VenueConfigError("device_exists", device_id=device_id)
        conn.execute("INSERT INTO devices (id, lane_id, kind, name, config, enabled) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
                     (device_id, lane_id, kind, values["name"],
                      json.dumps(values["config"], sort_keys=True), int(values["enabled"])))
        audit.record(conn, actor, "device.create", f"device:{device_id}", values)


def update_device(conn: sqlite3.Connection, actor: str, device_id: str, *, kind: str,
                  name: str = "", lane_id: int | None = None,
                  config: dict[str, Any] | None = None, enabled: bool = True) -> None:
    """Change a device; the gate runtime replaces its thread within a poll."""
    values = {"kind": kind, "name": name[:MAX_NAME], "lane_id": lane_id,
              "config": dict(config or {}), "enabled": bool(enabled)}
    _check_device(conn, device_id, kind, lane_id)
    with immediate(conn):
        row = conn.execute(f"SELECT {', '.join(_DEVICE_FIELDS)} FROM devices WHERE id = ?",
                           (device_id,)).fetchone()
        if row is None:
            raise VenueConfigError("not_found", device_id=device_id)
        before = dict(zip(_DEVICE_FIELDS, row, strict=True))
        before["config"] = json.loads(before["config"] or "{}")
        before["enabled"] = bool(before["enabled"])
        conn.execute("UPDATE devices SET lane_id = ?, kind = ?, name = ?, config = ?, "
                     "enabled = ? WHERE id = ?",
                     (lane_id, kind, values["name"],
                      json.dumps(values["config"], sort_keys=True), int(values["enabled"]),
                      device_id))
        audit.record(conn, actor, "device.update", f"device:{device_id}",
                     {"before": before, "after": values})


def set_device_enabled(conn: sqlite3.Connection, actor: str, device_id: str,
                       enabled: bool) -> None:
    """Switch a device on or off (the gate runtime opens or closes it within a poll)."""
    with immediate(conn):
        if conn.execute("UPDATE devices SET enabled = ? WHERE id = ?",
                        (int(enabled), device_id)).rowcount == 0:
            raise VenueConfigError("not_found", device_id=device_id)
        audit.record(conn, actor, "device.enable" if enabled else "device.disable",
                     f"device:{device_id}")


def delete_device(conn: sqlite3.Connection, actor: str, device_id: str) -> None:
    with immediate(conn):
        row = conn.execute("SELECT kind, name, lane_id FROM devices WHERE id = ?",
                           (device_id,)).fetchone()
        if row is None:
            raise VenueConfigError("not_found", device_id=device_id)
        conn.execute("DELETE FROM devices WHERE id = ?", (device_id,))
        audit.record(conn, actor, "device.delete", f"device:{device_id}",
                     {"kind": row[0], "name": row[1], "lane_id": row[2]})
