"""Venues, zones, gates and seat maps on both databases."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from cloud.catalog.errors import CatalogError
from cloud.catalog.tables import seats
from cloud.catalog.venues import add_gate, add_zone, create_venue
from cloud.core.changes import changes_since
from cloud.core.db import init_db, make_engine
from cloud.inventory.seat_map import export_seats_csv, import_seats_csv

HEADER = "level,zone,row,number,category,damaged,removed,obstructed\n"


@pytest.fixture
def hub(hub_url):
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        venue = create_venue(conn, "OSC", "Olympic Sports Centre", "1 Stadium Road")
        add_zone(conn, venue, "A", "North Stand")
        add_zone(conn, venue, "B", "East Stand")
    yield engine, venue
    engine.dispose()


def test_zones_and_gates_reach_the_venues_change_log(hub):
    engine, venue = hub
    with engine.begin() as conn:
        add_gate(conn, venue, "G1", "Gate 1", ["A", "B"], realname_mode="ticket_and_id")
        other = create_venue(conn, "AQC", "Aquatics Centre")
        add_zone(conn, other, "A", "Pool side")
    with engine.connect() as conn:
        mine = changes_since(conn, venue, 0)
        theirs = changes_since(conn, other, 0)
    assert [c["type"] for c in mine] == ["venue", "zone", "zone", "gate"]
    gate = mine[-1]
    assert gate["realname_mode"] == "ticket_and_id" and len(gate["zones"]) == 2
    assert [c["type"] for c in theirs] == ["venue", "zone"]


def test_bad_venue_zone_and_gate_requests(hub):
    engine, venue = hub
    with pytest.raises(CatalogError, match="exists already"):
        with engine.begin() as conn:
            create_venue(conn, "OSC", "Again")
    with pytest.raises(CatalogError, match="time zone"):
        with engine.begin() as conn:
            create_venue(conn, "X", "X", timezone="Mars/Olympus")
    with pytest.raises(CatalogError, match="no zone 'Z'"):
        with engine.begin() as conn:
            add_gate(conn, venue, "G9", "Gate 9", ["Z"])
    with pytest.raises(CatalogError, match="zone 'A' exists"):
        with engine.begin() as conn:
            add_zone(conn, venue, "A", "Again")


def test_seat_import_export_round_trip(hub):
    engine, venue = hub
    text = HEADER + "L1,A,1,1,standard,,,\nL1,A,1,2,standard,no,no,yes\nL2,B,10,1,vip,yes,,\n"
    with engine.begin() as conn:
        report = import_seats_csv(conn, venue, text)
    assert report.ok and (report.created, report.updated) == (3, 0)
    with engine.connect() as conn:
        exported = export_seats_csv(conn, venue)
    assert exported.splitlines()[0] == HEADER.strip()
    assert "L1,A,1,2,standard,no,no,yes" in exported and "L2,B,10,1,vip,yes,no,no" in exported
    with engine.begin() as conn:
        again = import_seats_csv(conn, venue, exported)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    with engine.begin() as conn:
        moved = import_seats_csv(conn, venue, HEADER + "L1,B,1,1,vip,,yes,\n")
    assert (moved.created, moved.updated) == (0, 1)


def test_every_bad_row_is_reported_and_nothing_changes(hub):
    engine, venue = hub
    text = HEADER + ("L1,A,1,1,standard,,,\n"
                     "L1,Q,1,2,standard,,,\n"          # unknown zone
                     "L1,A,,3,standard,,,\n"           # empty row
                     "L1,A,1,4,standard,maybe,,\n"     # bad flag
                     "L1,A,1,1,standard,,,\n"          # duplicate of line 2
                     "L1,A,1,5,standard,,,,extra\n")   # too many fields
    with engine.begin() as conn:
        report = import_seats_csv(conn, venue, text)
    assert not report.ok
    found = {(e.line, e.column) for e in report.errors}
    assert found == {(3, "zone"), (4, "row"), (5, "damaged"), (6, "number"), (7, "row")}
    assert "no zone 'Q'" in str(report.errors[0]) and "line 3" in str(report.errors[0])
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(seats)).scalar() == 0


def test_a_file_without_the_needed_columns(hub):
    engine, venue = hub
    with engine.begin() as conn:
        report = import_seats_csv(conn, venue, "zone,row,seat\nA,1,1\n")
    assert report.errors[0].line == 1 and "missing column(s) level" in report.errors[0].message


def test_a_50000_seat_map_imports_in_seconds(hub):
    engine, venue = hub
    lines = [HEADER]
    for i in range(50_000):
        lines.append(f"L{i // 10000},{'AB'[i % 2]},{i // 100 % 100},{i % 100},standard,,,\n")
    t0 = time.perf_counter()
    with engine.begin() as conn:
        report = import_seats_csv(conn, venue, "".join(lines))
    elapsed = time.perf_counter() - t0
    assert report.ok and report.created == 50_000, report.errors[:3]
    print(f"50,000 seats imported in {elapsed:.1f}s")
