"""The gate runtime in this process, against real drivers and their simulators on pty pairs:
decisions open the Modbus turnstile, passages confirm, no passage annuls, re-scans are
ignored, real-name pairs, commands and configuration from the database, crashes contained,
health and the systemd watchdog."""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import pytest

from drivers.base import DeviceState
from drivers.sim.idcard import SAMPLE_CARD, IdCardReaderSim
from drivers.sim.serial_scanner import SerialScannerSim
from edge.gates.devices import build_driver
from sync.timeutil import to_iso, utcnow
from tests.edge.gates_kit import (
    RuntimeThread,
    ScriptedBoard,
    add_device,
    device_state,
    entries,
    load_venue,
    settled,
    wait_for,
)

N1, S1, ID1, N2 = 1, 3, 4, 2  # lane ids of the sample venue


@pytest.fixture
def venue_db(db_path, vault, hub_key):
    venue, conn = load_venue(db_path, vault, hub_key)
    yield venue, conn
    conn.close()


@pytest.fixture
def scanner():
    with SerialScannerSim() as sim:
        yield sim


def board_for(script=(), **kw):
    board = ScriptedBoard(script=script)
    board.pass_pulse_s = 0.15  # shorter than a walk: two passages never merge into one pulse
    for k, v in kw.items():
        setattr(board, k, v)
    return board


def code(venue, ticket_id: int) -> str:
    return venue.tickets[ticket_id].code


def forged(text: str) -> str:
    i = len(text) // 2
    return text[:i] + ("7" if text[i] != "7" else "8") + text[i + 1:]


def flashes(board) -> int:
    return len(board.flashes)


def test_valid_scans_open_the_lane_and_passages_confirm_them(venue_db, db_path, vault, scanner):
    venue, conn = venue_db
    with board_for() as board:
        add_device(conn, "ts-1", N1, "turnstile", {"port": board.port})
        add_device(conn, "scan-1", N1, "barcode_scanner", {"port": scanner.port})
        with RuntimeThread(db_path, vault):
            wait_for(lambda: device_state(conn, "ts-1") == "up" and
                     device_state(conn, "scan-1") == "up", what="devices up")
            scanner.scan(code(venue, 1001))
            wait_for(lambda: entries(conn) == [(1001, "OK", 1, "passed")], what="a passage")
            assert flashes(board) == 1 and board.flashes[0][0] == 0  # relay 0: unlock A
            scanner.scan(forged(code(venue, 1002)))
            scanner.scan(code(venue, 1001))
            scanner.scan(code(venue, 900005))  # refunded
            wait_for(lambda: len(entries(conn)) == 4, what="three more entries")
            assert entries(conn)[1:] == [(None, "FORGED", 0, None),
                                         (1001, "ALREADY_ENTERED", 0, None),
                                         (900005, "REVOKED", 0, None)]
            assert flashes(board) == 1
            health = json.loads(conn.execute("SELECT health FROM devices WHERE id = 'ts-1'"
                                             ).fetchone()[0])
            wait_for(lambda: json.loads(conn.execute(
                "SELECT health FROM devices WHERE id = 'ts-1'").fetchone()[0]).get("unlocks"),
                what="turnstile metrics")
            assert isinstance(health, dict)


def test_no_passage_annuls_the_entry_and_the_ticket_stays_unused(venue_db, db_path, vault,
                                                                scanner):
    venue, conn = venue_db
    conn.execute("UPDATE lanes SET passage_timeout_s = 1 WHERE id = ?", (N1,))
    with board_for(script=["never", "passes"]) as board:
        add_device(conn, "ts-1", N1, "turnstile", {"port": board.port})
        add_device(conn, "scan-1", N1, "barcode_scanner", {"port": scanner.port})
        with RuntimeThread(db_path, vault):
            wait_for(lambda: device_state(conn, "scan-1") == "up", what="scanner up")
            wait_for(lambda: device_state(conn, "ts-1") == "up", what="turnstile up")
            scanner.scan(code(venue, 1005))
            wait_for(lambda: entries(conn) == [(1005, "OK", 0, "timeout")], what="an annulment")
            detail = conn.execute("SELECT detail FROM entries").fetchone()[0]
            assert "nobody passed" in detail or "no passage" in detail
            scanner.scan(code(venue, 1005))
            wait_for(lambda: len(entries(conn)) == 2 and settled(conn), what="a second try")
            assert entries(conn)[1] == (1005, "OK", 1, "passed")
            assert flashes(board) == 2


def test_a_rescan_while_open_is_ignored_and_other_scans_wait(venue_db, db_path, vault,
                                                             scanner):
    venue, conn = venue_db
    conn.execute("UPDATE lanes SET passage_timeout_s = 5 WHERE id = ?", (N1,))
    with board_for(script=["hesitates", "passes"], hesitate_s=1.5) as board:
        add_device(conn, "ts-1", N1, "turnstile", {"port": board.port})
        add_device(conn, "scan-1", N1, "barcode_scanner", {"port": scanner.port})
        with RuntimeThread(db_path, vault):
            wait_for(lambda: device_state(conn, "ts-1") == "up" and
                     device_state(conn, "scan-1") == "up", what="devices up")
            scanner.scan(code(venue, 1001))
            wait_for(lambda: len(entries(conn)) == 1, what="the first decision")
            scanner.scan(code(venue, 1001))   # the same person, impatient
            scanner.scan(code(venue, 1002))   # the next person, too early
            scanner.scan(code(venue, 1002))
            wait_for(lambda: len(entries(conn)) == 2 and settled(conn), timeout=60,
                     what="both passages")
            assert entries(conn) == [(1001, "OK", 1, "passed"), (1002, "OK", 1, "passed")]
            assert flashes(board) == 2


def realname(venue, ticket_id: int) -> dict:
    name, _, number = venue.holders[venue.tickets[ticket_id].holder_id]
    return {**SAMPLE_CARD, "name": name, "id_number": number}


def test_realname_lane_pairs_ticket_and_id_card_in_either_order(venue_db, db_path, vault,
                                                                scanner):
    venue, conn = venue_db
    assert venue.tickets[1003].holder_id and venue.tickets[1007].holder_id
    with board_for() as board, IdCardReaderSim() as reader:
        add_device(conn, "ts-s1", S1, "turnstile", {"port": board.port})
        add_device(conn, "scan-s1", S1, "barcode_scanner", {"port": scanner.port})
        add_device(conn, "id-s1", S1, "id_reader", {"port": reader.port, "poll_ms": 50})
        with RuntimeThread(db_path, vault, realname_window_s=30):
            wait_for(lambda: all(device_state(conn, d) == "up"
                                 for d in ("ts-s1", "scan-s1", "id-s1")), what="devices up")
            # the ID card first, then the ticket
            reader.present(realname(venue, 1003))
            wait_for(lambda: reader.commands.count((0x30, 0x01)) >= 1, what="the card read")
            scanner.scan(code(venue, 1003))
            wait_for(lambda: entries(conn) == [(1003, "OK", 1, "passed")], what="pair one")
            reader.remove()
            # the ticket first (refused until the card comes), then the ID card
            scanner.scan(code(venue, 1007))
            wait_for(lambda: len(entries(conn)) == 2, what="the ticket alone")
            assert entries(conn)[1] == (1007, "REALNAME_REQUIRED", 0, None)
            reader.present(realname(venue, 1007))
            wait_for(lambda: len(entries(conn)) == 3 and settled(conn), what="pair two")
            assert entries(conn)[2] == (1007, "OK", 1, "passed")
            reader.remove()
            # someone else's card with a ticket
            scanner.scan(code(venue, 900008))
            wait_for(lambda: len(entries(conn)) == 4, what="the third ticket")
            reader.present(realname(venue, 1003))
            wait_for(lambda: len(entries(conn)) == 5, what="the mismatch")
            assert entries(conn)[4] == (900008, "REALNAME_MISMATCH", 0, None)
            assert flashes(board) == 2
    rows = conn.execute("SELECT scan_ref FROM entries").fetchall()
    assert all(realname(venue, 1003)["id_number"] not in r[0] for r in rows)


def test_an_id_card_alone_opens_an_id_only_lane(venue_db, db_path, vault):
    venue, conn = venue_db
    with board_for() as board, IdCardReaderSim() as reader:
        add_device(conn, "ts-id", ID1, "turnstile", {"port": board.port})
        add_device(conn, "id-1", ID1, "id_reader", {"port": reader.port, "poll_ms": 50})
        with RuntimeThread(db_path, vault):
            wait_for(lambda: device_state(conn, "id-1") == "up", what="reader up")
            wait_for(lambda: device_state(conn, "ts-id") == "up", what="turnstile up")
            reader.present(realname(venue, 1011))
            wait_for(lambda: entries(conn) == [(1011, "OK", 1, "passed")], what="admission")
            assert flashes(board) == 1


def command(conn, lane_id: int, seconds: int = 10, entry_id: str | None = None) -> int:
    now = utcnow()
    return conn.execute(
        "INSERT INTO device_commands (created_at, expires_at, actor, command, lane_id, args) "
        "VALUES (?, ?, 'supervisor1', 'open_lane', ?, ?)",
        (to_iso(now), to_iso(now + timedelta(seconds=seconds)), lane_id,
         json.dumps({"entry_id": entry_id} if entry_id else {}))).lastrowid


def status_of(conn, cid: int) -> tuple:
    row = conn.execute("SELECT status, result FROM device_commands WHERE id = ?",
                       (cid,)).fetchone()
    return row[0], json.loads(row[1]) if row[1] else None


def test_open_lane_commands_from_the_database(venue_db, db_path, vault, scanner):
    venue, conn = venue_db
    conn.execute("UPDATE lanes SET passage_timeout_s = 1 WHERE id = ?", (N1,))
    expired = command(conn, N1, seconds=-1)
    with board_for(script=["passes", "never"]) as board:
        add_device(conn, "ts-1", N1, "turnstile", {"port": board.port})
        add_device(conn, "scan-1", N1, "barcode_scanner", {"port": scanner.port})
        with RuntimeThread(db_path, vault):
            wait_for(lambda: device_state(conn, "ts-1") == "up", what="turnstile up")
            first = command(conn, N1)
            wait_for(lambda: status_of(conn, first)[0] == "done", what="the first command")
            assert status_of(conn, first)[1]["ok"] is True
            second = command(conn, N1)
            wait_for(lambda: status_of(conn, second)[0] == "done", what="the second command")
            # the lane's passage time and the board driver's (the lane's, given to it) run
            # out together: whichever is seen first tells the timeout
            result = status_of(conn, second)[1]
            assert result == {"ok": False, "passage": "timeout", "message": result["message"]}
            assert result["message"] in ("no passage within 1 s",
                                         "the turnstile reports nobody passed"), result
            assert flashes(board) == 2
            assert status_of(conn, expired) == ("pending", None)  # never carried out


def test_configuration_changes_are_picked_up_without_a_restart(venue_db, db_path, vault):
    venue, conn = venue_db
    with board_for() as board, SerialScannerSim() as first, SerialScannerSim() as second:
        add_device(conn, "ts-1", N1, "turnstile", {"port": board.port})
        add_device(conn, "scan-1", N1, "barcode_scanner", {"port": first.port}, enabled=False)
        with RuntimeThread(db_path, vault):
            wait_for(lambda: device_state(conn, "scan-1") == "disabled", what="disabled")
            conn.execute("UPDATE devices SET enabled = 1 WHERE id = 'scan-1'")
            wait_for(lambda: device_state(conn, "scan-1") == "up", what="enabled")
            first.scan(code(venue, 1001))
            wait_for(lambda: len(entries(conn)) == 1 and settled(conn), what="a scan")
            conn.execute("UPDATE devices SET config = ? WHERE id = 'scan-1'",
                         (json.dumps({"port": second.port}),))
            wait_for(lambda: conn.execute("SELECT state_at FROM devices WHERE id = 'scan-1'"
                                          ).fetchone()[0] and second.running, what="moved")
            deadline_scan = code(venue, 1002)
            wait_for(lambda: second.scan(deadline_scan) and len(entries(conn)) == 2,
                     every=1.0, what="a scan from the new port")
            assert entries(conn)[1][:2] == (1002, "OK")


class Exploding:
    """A reader whose read() has a bug."""

    device_id = "bad"

    def open(self):
        pass

    def read(self, timeout):
        raise RuntimeError("bug in a driver")

    def health(self):
        from drivers.base import Health
        return Health(DeviceState.UP)

    def close(self):
        pass


def test_an_exception_in_one_device_never_stops_another_lane(venue_db, db_path, vault,
                                                             scanner):
    venue, conn = venue_db

    def factory(row, timeout):
        return Exploding() if row.id == "bad" else build_driver(row, timeout)

    with board_for() as board:
        add_device(conn, "ts-1", N1, "turnstile", {"port": board.port})
        add_device(conn, "scan-1", N1, "barcode_scanner", {"port": scanner.port})
        add_device(conn, "bad", N2, "qr_camera", {"source": "/nowhere.avi"})
        with RuntimeThread(db_path, vault, factory=factory):
            wait_for(lambda: "internal error" in (conn.execute(
                "SELECT state_detail FROM devices WHERE id = 'bad'").fetchone()[0] or ""),
                what="the bad device down")
            wait_for(lambda: device_state(conn, "scan-1") == "up", what="scanner up")
            scanner.scan(code(venue, 1001))
            wait_for(lambda: entries(conn) == [(1001, "OK", 1, "passed")], what="admission")
            assert device_state(conn, "bad") == "down"


def test_systemd_ready_and_watchdog(venue_db, db_path, vault, scanner, tmp_path, monkeypatch):
    venue, conn = venue_db
    path = str(tmp_path / "notify.sock")
    sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sink.bind(path)
    sink.settimeout(30)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    add_device(conn, "scan-1", N1, "barcode_scanner", {"port": scanner.port})
    got = []
    try:
        with RuntimeThread(db_path, vault):
            while sum(m.startswith("WATCHDOG=1") for m in got) < 3:
                got.append(sink.recv(4096).decode())
        got.append(sink.recv(4096).decode())
    finally:
        sink.close()
    assert got[0].startswith("READY=1") and "1 lanes" in got[0]
    assert got[-1] == "STOPPING=1"


def device_test(conn, device_id: str, action: str) -> int:
    now = utcnow()
    return conn.execute(
        "INSERT INTO device_commands (created_at, expires_at, actor, command, device_id, args) "
        "VALUES (?, ?, 'admin1', 'test', ?, ?)",
        (to_iso(now), to_iso(now + timedelta(seconds=60)), device_id,
         json.dumps({"action": action}))).lastrowid


def test_device_tests_from_the_web_pages(venue_db, db_path, vault, scanner, tmp_path):
    import base64

    import cv2
    import numpy as np

    from drivers.sim import scenes

    venue, conn = venue_db
    shown = code(venue, 1001)
    video = scenes.write_video(tmp_path / "aim.avi", scenes.frames(
        (640, 480), scenes.timeline([(shown, 30)])), fps=15)
    with board_for() as board:
        add_device(conn, "ts-1", N1, "turnstile", {"port": board.port})
        add_device(conn, "scan-1", N1, "barcode_scanner", {"port": scanner.port})
        add_device(conn, "cam-1", None, "qr_camera", {"source": str(video), "realtime": True,
                                                    "replay": True, "debounce_s": 60})
        with RuntimeThread(db_path, vault):
            wait_for(lambda: all(device_state(conn, d) == "up"
                                 for d in ("ts-1", "scan-1", "cam-1")), what="devices up")
            pulse = device_test(conn, "ts-1", "pulse")
            wait_for(lambda: status_of(conn, pulse)[0] == "done", what="the pulse")
            assert status_of(conn, pulse)[1]["ok"] is True
            read = device_test(conn, "scan-1", "read_scan")
            wait_for(lambda: conn.execute("SELECT status FROM device_commands WHERE id = ?",
                                          (read,)).fetchone()[0] == "running", what="taken")
            scanner.scan("TEST-LABEL-42")
            wait_for(lambda: status_of(conn, read)[0] == "done", what="the read")
            assert status_of(conn, read)[1] == {"ok": True, "message": "read",
                                                "scan": "TEST-LABEL-42"}
            snap = device_test(conn, "cam-1", "snapshot")
            wait_for(lambda: status_of(conn, snap)[0] == "done", what="the snapshot")
            result = status_of(conn, snap)[1]
    assert result["codes"] == [shown]
    png = cv2.imdecode(np.frombuffer(base64.b64decode(result["snapshot_png"]), np.uint8),
                       cv2.IMREAD_COLOR)
    assert png.shape == (480, 640, 3)
    assert entries(conn) == []  # a test scan is not a decision
    assert flashes(board) == 1


def test_a_turnstile_with_no_board_answering_stays_down_with_one_log_line(
        venue_db, db_path, vault, caplog):
    import logging

    venue, conn = venue_db
    opens = []

    def factory(row, timeout):
        driver = build_driver(row, timeout)
        real_open = driver.open

        def counted_open():
            opens.append(1)
            return real_open()
        driver.open = counted_open
        return driver

    caplog.set_level(logging.DEBUG, logger="edge.gates.devices")
    with board_for(silence=True) as board:
        port = board.port
        add_device(conn, "ts-1", N1, "turnstile", {"port": board.port,
                                                   "reply_timeout_ms": 50})
        with RuntimeThread(db_path, vault, factory=factory, backoff_s=(0.05, 0.1)):
            wait_for(lambda: len(opens) >= 5, what="five attempts to open the board")
            wait_for(lambda: device_state(conn, "ts-1") == "down", what="the state row")
            assert device_state(conn, "ts-1") == "down"
            assert "no board answers as unit 1" in conn.execute(
                "SELECT state_detail FROM devices WHERE id = 'ts-1'").fetchone()[0]
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO
            and (r.name != "edge.gates.devices" or "ts-1" in r.getMessage())]
    assert said == [f"device ts-1 down: no board answers as unit 1 on {port}: "
                    "board not answering: read inputs: no reply within 0.05 s"]


def test_the_runtime_reports_healthy_devices_seen_on_a_fixed_beat(venue_db, db_path, vault,
                                                                  scanner):
    venue, conn = venue_db
    add_device(conn, "scan-1", N1, "barcode_scanner", {"port": scanner.port})

    def seen():
        return conn.execute("SELECT state, state_at, seen_at FROM devices WHERE id = 'scan-1'"
                            ).fetchone()

    with RuntimeThread(db_path, vault, beat_s=0.1):
        wait_for(lambda: seen()[0] == "up", what="scanner up")
        state_at = seen()[1]
        first = wait_for(lambda: seen()[2] if seen()[2] > state_at else None,
                         what="a beat after the state was written")
        wait_for(lambda: seen()[2] > first, what="the next beat")
        assert seen()[:2] == ("up", state_at)  # nothing changed but the beat


def test_a_device_is_not_reporting_only_when_its_beat_is_old():
    from edge import status

    conn = __import__("sqlite3").connect(":memory:")
    conn.executescript("CREATE TABLE lanes (id INTEGER, code TEXT); CREATE TABLE devices ("
                       "id TEXT, kind TEXT, name TEXT, enabled INTEGER, state TEXT, "
                       "state_detail TEXT, state_at TEXT, seen_at TEXT, lane_id INTEGER)")
    now = utcnow()
    rows = [("steady", now - timedelta(hours=3), now - timedelta(seconds=25)),
            ("silent", now - timedelta(hours=3), now - timedelta(seconds=95)),
            ("handheld", now - timedelta(seconds=30), None),
            ("never", None, None)]
    for device_id, state_at, seen_at in rows:
        conn.execute("INSERT INTO devices VALUES (?, 'turnstile', '', 1, 'up', '', ?, ?, NULL)",
                     (device_id, state_at and to_iso(state_at), seen_at and to_iso(seen_at)))
    silent = {d["id"]: d["silent"] for d in status.devices(conn, now)}
    assert silent == {"steady": False, "silent": True, "handheld": False, "never": True}
