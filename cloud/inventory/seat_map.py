"""A venue's seat map, imported and exported as CSV.

An import is checked whole first and reports every bad row (line, column, what is wrong), and
only a clean file changes the map; sessions not yet on sale then follow the new map
(``follow_venue_map``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import sqlalchemy as sa

from cloud.catalog.tables import seats, zones
from cloud.core.audit import SYSTEM, record
from cloud.inventory.seats import follow_seat_categories, follow_venue_map
from sync.websafe import CsvWriter, csv_uncell

SEAT_COLUMNS = ("level", "zone", "row", "number", "category", "damaged", "removed", "obstructed")
_FLAGS = {"": False, "0": False, "no": False, "false": False, "n": False,
          "1": True, "yes": True, "true": True, "y": True, "x": True}
MAX_LABEL = 20


# What can be wrong with a row (or the header) of a seat map, by code, in English; a page puts
# them in its language by code (cloud/web/words.py).
ROW_PROBLEMS = {
    "missing_columns": "missing column(s) %(cols)s; expected %(all)s",
    "unknown_columns": "unknown column(s) %(cols)s; expected %(all)s",
    "too_many_fields": "more fields than the header has",
    "empty": "empty",
    "too_long": "longer than %(n)s characters",
    "no_such_zone": "no zone '%(zone)s' at this venue (zones: %(zones)s)",
    "not_yes_no": "'%(value)s' is not yes/no",
    "seat_twice": "seat %(seat)s appears twice (first on line %(line)s)",
}


@dataclass
class RowError:
    line: int
    column: str
    code: str
    params: dict = field(default_factory=dict)

    @property
    def message(self) -> str:
        return ROW_PROBLEMS[self.code] % self.params

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
        report.errors.append(RowError(1, "header", "missing_columns" if missing
                                      else "unknown_columns",
                                      {"cols": ", ".join(missing or unknown),
                                       "all": ", ".join(SEAT_COLUMNS)}))
        return report
    reader.fieldnames = header
    wanted: dict[tuple[str, str, str], dict] = {}
    for line, raw in enumerate(reader, start=2):
        # a file the hub exported: cells it neutralised (level "-1") read back as they were
        row = {k: csv_uncell((v or "").strip()) for k, v in raw.items() if k is not None}
        if None in raw:
            report.errors.append(RowError(line, "row", "too_many_fields"))
            continue
        errs_before = len(report.errors)
        for col in ("level", "row", "number", "category"):
            if not row.get(col):
                report.errors.append(RowError(line, col, "empty"))
            elif len(row[col]) > MAX_LABEL and col != "category":
                report.errors.append(RowError(line, col, "too_long", {"n": MAX_LABEL}))
        zone_id = zone_ids.get(row.get("zone", ""))
        if zone_id is None:
            report.errors.append(RowError(line, "zone", "no_such_zone", {
                "zone": row.get("zone"), "zones": ", ".join(sorted(zone_ids))}))
        flags = {}
        for col in ("damaged", "removed", "obstructed"):
            flags[col] = _flag(row.get(col, ""))
            if flags[col] is None:
                report.errors.append(RowError(line, col, "not_yes_no", {"value": row[col]}))
        key = (row.get("level", ""), row.get("row", ""), row.get("number", ""))
        if key in wanted and all(key):
            report.errors.append(RowError(line, "number", "seat_twice", {
                "seat": "/".join(key), "line": wanted[key]["line"]}))
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
        follow_seat_categories(conn, {c["seat_id"]: c["category"] for c in changed})
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
