"""Device commands, both sides: the pages queue, the gate runtime takes each once (never after
it expired) and records the outcome; the gate screen asks which openings are still to come."""

from __future__ import annotations

import json
from datetime import timedelta

from edge import commands, venue_config
from edge.engine import Scan, ScanKind
from tests.conftest import NOW


def lane_id(conn, code: str) -> int:
    return conn.execute("SELECT id FROM lanes WHERE code = ?", (code,)).fetchone()[0]


def status_of(conn, cid: int) -> tuple:
    return conn.execute("SELECT status, taken_at IS NOT NULL, result FROM device_commands "
                        "WHERE id = ?", (cid,)).fetchone()


def test_the_runtime_takes_a_command_once_and_records_its_outcome(loaded):
    conn = loaded
    venue_config.create_device(conn, "admin", device_id="cam-1", kind="qr_camera")
    test = commands.request_test(conn, "cam-1", "admin", NOW)
    opening = commands.request_open(conn, lane_id(conn, "N1"), "gate", {"why": "scan"}, NOW)
    taken = commands.take(conn, NOW + timedelta(seconds=1))
    assert [(t["id"], t["command"], t["args"]) for t in taken] == [
        (test, "test", {"action": "snapshot"}), (opening, "open_lane", {"why": "scan"})]
    assert taken[0]["device_id"] == "cam-1" and taken[1]["lane_id"] == lane_id(conn, "N1")
    assert commands.take(conn, NOW + timedelta(seconds=2)) == []  # running: not again
    commands.finish(conn, test, "done", {"ok": True, "codes": ["票"]})
    assert status_of(conn, test) == ("done", 1, json.dumps({"ok": True, "codes": ["票"]},
                                                            ensure_ascii=False))
    assert commands.get_command(conn, test)["result"] == {"ok": True, "codes": ["票"]}


def test_an_expired_command_is_never_taken_and_shows_as_expired(loaded):
    conn = loaded
    cid = commands.request_open(conn, lane_id(conn, "N1"), "gate", {"why": "override"}, NOW)
    later = NOW + commands.OPEN_TTL
    assert commands.take(conn, later) == []
    assert status_of(conn, cid) == ("pending", 0, None)
    assert commands.command_view(conn.execute(
        f"SELECT {commands._COLUMNS} FROM device_commands").fetchone(), later)["status"] == \
        "expired"


def test_an_opening_is_pending_until_it_is_done_or_expired_and_only_for_its_entry(
        loaded, engine):
    conn = loaded
    d = engine.decide(Scan(ScanKind.QR, "not-a-ticket", device_id="web:gate"), "N1")
    lane = lane_id(conn, "N1")
    cid = commands.request_open(conn, lane, "gate", {"entry_id": d.entry_id}, NOW)
    assert commands.pending_openings(conn, [d.entry_id, "other"], NOW) == {d.entry_id}
    assert commands.pending_openings(conn, [d.entry_id], NOW + commands.OPEN_TTL) == set()
    assert commands.pending_openings(conn, [], NOW) == set()
    commands.take(conn, NOW)
    assert commands.pending_openings(conn, [d.entry_id], NOW) == {d.entry_id}  # running
    commands.finish(conn, cid, "done", {"ok": True})
    assert commands.pending_openings(conn, [d.entry_id], NOW) == set()
