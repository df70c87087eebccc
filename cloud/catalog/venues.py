"""Venues, zones, gates and seat maps.

Zones and gates travel to the venue's appliances: every change to them is written to the
change log in the same transaction. Seat maps are imported and exported as CSV; an import is
checked whole first and reports every bad row (line, column, what is wrong), and only a clean
file changes the map.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from cloud.catalog.tables import gate_zones, gates, lanes, seats, venues, zones
from cloud.core.audit import SYSTEM, record
from cloud.core.changes import record_change
from cloud.core.trust import signing_keys
from cloud.inventory.seats import follow_venue_map
from cloud.sales.tickets import key_change
from sync.websafe import CsvWriter, csv_uncell

SEAT_COLUMNS = ("level", "zone", "row", "number", "category", "damaged", "removed", "obstructed")
_FLAGS = {"": False, "0": False, "no": False, "false": False, "n": False,
          "1": True, "yes": True, "true": True, "y": True, "x": True}
MAX_LABEL = 20


class VenueError(ValueError):
    """A venue, zone or gate that cannot be created as asked; the message says why."""


@dataclass
class RowError:
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.column}: {self.message}"


@dataclass
class SeatImport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def create_venue(conn: sa.Connection, code: str, name: str, address: str = "",
                 timezone: str = "Asia/Shanghai", actor: str = SYSTEM) -> int:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise VenueError(f"unknown time zone {timezone!r}") from None
    if conn.execute(sa.select(venues.c.id).where(venues.c.code == code)).first():
        raise VenueError(f"a venue with code {code!r} exists already")
    venue_id = conn.execute(sa.insert(venues).values(
        code=code, name=name, address=address, timezone=timezone)).inserted_primary_key[0]
    record_change(conn, venue_id, {"type": "venue", "op": "upsert", "id": venue_id,
                                   "code": code, "name": name, "timezone": timezone})
    for row in conn.execute(sa.select(signing_keys).where(signing_keys.c.state != "retired")):
        record_change(conn, venue_id, key_change(row))
    record(conn, actor, "venue.create", f"venue:{venue_id}", None,
           {"code": code, "name": name, "timezone": timezone})
    return venue_id


def add_zone(conn: sa.Connection, venue_id: int, code: str, name: str,
             actor: str = SYSTEM) -> int:
    if conn.execute(sa.select(zones.c.id).where(zones.c.venue_id == venue_id,
                                                zones.c.code == code)).first():
        raise VenueError(f"zone {code!r} exists already at this venue")
    zone_id = conn.execute(sa.insert(zones).values(
        venue_id=venue_id, code=code, name=name)).inserted_primary_key[0]
    record_change(conn, venue_id, {"type": "zone", "op": "upsert", "id": zone_id, "code": code,
                                   "name": name})
    record(conn, actor, "zone.create", f"zone:{zone_id}", None,
           {"venue_id": venue_id, "code": code, "name": name})
    return zone_id


def add_gate(conn: sa.Connection, venue_id: int, code: str, name: str,
             zone_codes: Iterable[str] = (), reentry: bool = False,
             realname_mode: str = "ticket", open_before_min: int = 30,
             close_after_min: int = 60, actor: str = SYSTEM, manual_entry: bool = False) -> int:
    """A gate and its entry policy. ``manual_entry``: its lanes also admit on a ticket number
    typed by signed-in staff (never on one a reader read)."""
    if conn.execute(sa.select(gates.c.id).where(gates.c.venue_id == venue_id,
                                                gates.c.code == code)).first():
        raise VenueError(f"gate {code!r} exists already at this venue")
    zone_ids = []
    for zc in zone_codes:
        row = conn.execute(sa.select(zones.c.id).where(zones.c.venue_id == venue_id,
                                                       zones.c.code == zc)).first()
        if row is None:
            raise VenueError(f"gate {code}: no zone {zc!r} at this venue")
        zone_ids.append(row[0])
    gate_id = conn.execute(sa.insert(gates).values(
        venue_id=venue_id, code=code, name=name, reentry=reentry, realname_mode=realname_mode,
        open_before_min=open_before_min, close_after_min=close_after_min,
        manual_entry=manual_entry)
    ).inserted_primary_key[0]
    if zone_ids:
        conn.execute(sa.insert(gate_zones), [{"gate_id": gate_id, "zone_id": z}
                                             for z in zone_ids])
    gate = {"type": "gate", "op": "upsert", "id": gate_id, "code": code, "name": name,
            "zones": sorted(zone_ids), "reentry": reentry, "realname_mode": realname_mode,
            "open_before_min": open_before_min, "close_after_min": close_after_min,
            "manual_entry": manual_entry}
    record_change(conn, venue_id, gate)
    record(conn, actor, "gate.create", f"gate:{gate_id}", None,
           {k: v for k, v in gate.items() if k not in ("type", "op")})
    return gate_id


def update_gate(conn: sa.Connection, gate_id: int, name: str, zone_codes: Iterable[str],
                reentry: bool, realname_mode: str, open_before_min: int, close_after_min: int,
                actor: str = SYSTEM, manual_entry: bool | None = None) -> None:
    """Change a gate's name, the zones it admits and its entry policy; the venue's appliances
    get the new gate in the same transaction. ``manual_entry`` None keeps it as it is."""
    old = conn.execute(sa.select(gates).where(gates.c.id == gate_id).with_for_update()).first()
    if old is None:
        raise VenueError(f"no gate {gate_id}")
    zone_ids = []
    for zc in zone_codes:
        row = conn.execute(sa.select(zones.c.id).where(zones.c.venue_id == old.venue_id,
                                                       zones.c.code == zc)).first()
        if row is None:
            raise VenueError(f"gate {old.code}: no zone {zc!r} at this venue")
        zone_ids.append(row[0])
    before_zones = sorted(conn.execute(sa.select(gate_zones.c.zone_id)
                                       .where(gate_zones.c.gate_id == gate_id)).scalars())
    if manual_entry is None:
        manual_entry = old.manual_entry
    conn.execute(sa.update(gates).where(gates.c.id == gate_id).values(
        name=name, reentry=reentry, realname_mode=realname_mode,
        open_before_min=open_before_min, close_after_min=close_after_min,
        manual_entry=manual_entry))
    conn.execute(sa.delete(gate_zones).where(gate_zones.c.gate_id == gate_id))
    if zone_ids:
        conn.execute(sa.insert(gate_zones), [{"gate_id": gate_id, "zone_id": z}
                                             for z in sorted(set(zone_ids))])
    gate = {"type": "gate", "op": "upsert", "id": gate_id, "code": old.code, "name": name,
            "zones": sorted(set(zone_ids)), "reentry": reentry, "realname_mode": realname_mode,
            "open_before_min": open_before_min, "close_after_min": close_after_min,
            "manual_entry": bool(manual_entry)}
    record_change(conn, old.venue_id, gate)
    record(conn, actor, "gate.update", f"gate:{gate_id}",
           {"name": old.name, "zones": before_zones, "reentry": old.reentry,
            "realname_mode": old.realname_mode, "open_before_min": old.open_before_min,
            "close_after_min": old.close_after_min, "manual_entry": old.manual_entry},
           {k: v for k, v in gate.items() if k not in ("type", "op", "id", "code")})

def add_lane(conn: sa.Connection, venue_id: int, gate_code: str, code: str, name: str = "",
             direction: str = "in", actor: str = SYSTEM) -> int:
    """A lane of a gate; its code is what the venue's entries carry, so the hub can count each
    entry at its gate. Sent to the venue's appliances like zones and gates."""
    if direction not in ("in", "out"):
        raise VenueError(f"lane {code}: direction must be in or out")
    gate_id = conn.execute(sa.select(gates.c.id).where(gates.c.venue_id == venue_id,
                                                       gates.c.code == gate_code)).scalar()
    if gate_id is None:
        raise VenueError(f"lane {code}: no gate {gate_code!r} at this venue")
    if conn.execute(sa.select(lanes.c.id).where(lanes.c.venue_id == venue_id,
                                                lanes.c.code == code)).first():
        raise VenueError(f"lane {code!r} exists already at this venue")
    lane_id = conn.execute(sa.insert(lanes).values(
        venue_id=venue_id, gate_id=gate_id, code=code, name=name, direction=direction)
    ).inserted_primary_key[0]
    lane = {"type": "lane", "op": "upsert", "id": lane_id, "code": code, "name": name,
            "gate_id": gate_id, "direction": direction}
    record_change(conn, venue_id, lane)
    record(conn, actor, "lane.create", f"lane:{lane_id}", None,
           {k: v for k, v in lane.items() if k not in ("type", "op")})
    return lane_id


def _flag(value: str) -> bool | None:
    return _FLAGS.get(value.strip().lower())


def import_seats_csv(conn: sa.Connection, venue_id: int, text: str,
                     actor: str = SYSTEM) -> SeatImport:
    """Add or update the venue's seats from CSV (header: level, zone, row, number, category,
    and optionally damaged, removed, obstructed). Seats are matched by level, row and number.
    Every bad row is reported; the map changes only if there are none."""
    report = SeatImport()
    zone_ids = dict(conn.execute(sa.select(zones.c.code, zones.c.id)
                                 .where(zones.c.venue_id == venue_id)).all())
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in SEAT_COLUMNS[:5] if c not in header]
    unknown = [h for h in header if h not in SEAT_COLUMNS]
    if missing or unknown:
        what = (f"missing column(s) {', '.join(missing)}" if missing
                else f"unknown column(s) {', '.join(unknown)}")
        report.errors.append(RowError(1, "header", f"{what}; expected {', '.join(SEAT_COLUMNS)}"))
        return report
    reader.fieldnames = header
    wanted: dict[tuple[str, str, str], dict] = {}
    for line, raw in enumerate(reader, start=2):
        # a file the hub exported: cells it neutralised (level "-1") read back as they were
        row = {k: csv_uncell((v or "").strip()) for k, v in raw.items() if k is not None}
        if None in raw:
            report.errors.append(RowError(line, "row", "more fields than the header has"))
            continue
        errs_before = len(report.errors)
        for col in ("level", "row", "number", "category"):
            if not row.get(col):
                report.errors.append(RowError(line, col, "empty"))
            elif len(row[col]) > MAX_LABEL and col != "category":
                report.errors.append(RowError(line, col, f"longer than {MAX_LABEL} characters"))
        zone_id = zone_ids.get(row.get("zone", ""))
        if zone_id is None:
            report.errors.append(RowError(line, "zone", f"no zone {row.get('zone')!r} at this "
                                          f"venue (zones: {', '.join(sorted(zone_ids))})"))
        flags = {}
        for col in ("damaged", "removed", "obstructed"):
            flags[col] = _flag(row.get(col, ""))
            if flags[col] is None:
                report.errors.append(RowError(line, col, f"{row[col]!r} is not yes/no"))
        key = (row.get("level", ""), row.get("row", ""), row.get("number", ""))
        if key in wanted and all(key):
            report.errors.append(RowError(line, "number", f"seat {'/'.join(key)} appears twice "
                                          f"(first on line {wanted[key]['line']})"))
        if len(report.errors) == errs_before:
            wanted[key] = {"line": line, "zone_id": zone_id, "category": row["category"],
                           **flags}
    if report.errors:
        return report
    existing = {(r.level, r.row, r.number): r for r in conn.execute(
        sa.select(seats).where(seats.c.venue_id == venue_id))}
    new, changed = [], []
    for (level, row_label, number), w in wanted.items():
        values = {"zone_id": w["zone_id"], "category": w["category"], "damaged": w["damaged"],
                  "removed": w["removed"], "obstructed": w["obstructed"]}
        old = existing.get((level, row_label, number))
        if old is None:
            new.append({"venue_id": venue_id, "level": level, "row": row_label,
                        "number": number, **values})
        elif any(getattr(old, k) != v for k, v in values.items()):
            changed.append({"seat_id": old.id, **values})
        else:
            report.unchanged += 1
    for start in range(0, len(new), 5000):
        conn.execute(sa.insert(seats), new[start:start + 5000])
    if changed:
        conn.execute(sa.update(seats).where(seats.c.id == sa.bindparam("seat_id"))
                     .values({k: sa.bindparam(k) for k in ("zone_id", "category", "damaged",
                                                            "removed", "obstructed")}), changed)
    report.created, report.updated = len(new), len(changed)
    if new or changed:
        follow_venue_map(conn, venue_id)
        record(conn, actor, "seats.import", f"venue:{venue_id}", None,
               {"created": len(new), "updated": len(changed)})
    return report


def export_seats_csv(conn: sa.Connection, venue_id: int) -> str:
    out = io.StringIO()
    w = CsvWriter(out, lineterminator="\n")
    w.writerow(SEAT_COLUMNS)
    q = (sa.select(seats.c.level, zones.c.code, seats.c.row, seats.c.number, seats.c.category,
                   seats.c.damaged, seats.c.removed, seats.c.obstructed)
         .join(zones, zones.c.id == seats.c.zone_id).where(seats.c.venue_id == venue_id)
         .order_by(seats.c.level, seats.c.row, seats.c.number, seats.c.id))
    for r in conn.execute(q):
        w.writerow([*r[:5], *("yes" if f else "no" for f in r[5:])])
    return out.getvalue()
