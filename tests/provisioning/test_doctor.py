"""``wicket-provision doctor`` on an enrolled box: devices matched with what the box has, the
hub and the credential, the clock, the database; a failing check makes a non-zero exit."""

from __future__ import annotations

import json
import sqlite3

import pytest

from drivers.base import PtyPair
from drivers.sim.modbus_board import ModbusBoardSim
from tests.provisioning.conftest import provision


@pytest.fixture
def enrolled(hub, box):
    venue = hub.add_venue("DOC")
    r = provision("enroll", "--hub", hub.process.url, f"--token={hub.token(venue)}", config=box)
    assert r.returncode == 0, r.stderr
    return box


def _add_device(box, device_id: str, kind: str, settings: dict) -> None:
    conn = sqlite3.connect(box.with_name("edge.db"))
    try:
        with conn:
            conn.execute("INSERT INTO devices (id, kind, config) VALUES (?, ?, ?)",
                         (device_id, kind, json.dumps(settings)))
    finally:
        conn.close()


def _checks(box) -> tuple[int, dict[str, dict]]:
    r = provision("doctor", "--json", config=box)
    checks = json.loads(r.stdout)
    assert isinstance(checks, list)
    for c in checks:
        assert set(c) == {"check", "status", "detail", "fix"}
        assert c["status"] in ("pass", "warn", "fail")
        assert c["status"] == "pass" or c["fix"], c
    return r.returncode, {c["check"]: c for c in checks}


def test_a_device_on_a_real_pty_passes_and_a_missing_port_fails(enrolled):
    with PtyPair() as pty:
        # a scanner's port is only looked for (a turnstile's board is asked: see below)
        _add_device(enrolled, "L1-TS", "barcode_scanner", {"port": pty.port, "baudrate": 9600})
        code, checks = _checks(enrolled)
        assert checks["device L1-TS"]["status"] == "pass", checks
        assert pty.port in checks["device L1-TS"]["detail"]
        for name in ("config", "database", "hub", "clock", "disk"):
            assert checks[name]["status"] == "pass", checks[name]
        assert checks["services"]["status"] == "warn"  # no systemd on this machine
        assert code == 0, checks

        _add_device(enrolled, "L2-ID", "id_reader", {"port": "/dev/ttyUSB-not-here"})
        code, checks = _checks(enrolled)
        assert code == 1
        missing = checks["device L2-ID"]
        assert missing["status"] == "fail" and "/dev/ttyUSB-not-here" in missing["detail"]
        assert "does not exist" in missing["detail"] and "port" in missing["fix"]
        assert checks["device L1-TS"]["status"] == "pass"

        r = provision("doctor", config=enrolled)  # the text form names the failure and the fix
        assert r.returncode == 1
        assert "FAIL  device L2-ID" in r.stdout and "fix:" in r.stdout


def test_doctor_fails_a_config_readable_by_others_and_an_unreachable_hub(enrolled, hub):
    enrolled.chmod(0o644)
    hub.process.stop()
    code, checks = _checks(enrolled)
    assert code == 1
    assert checks["config"]["status"] == "fail" and "chmod 600" in checks["config"]["fix"]
    assert checks["hub"]["status"] == "fail" and "unreachable" in checks["hub"]["detail"]
    hub.process.start()


def test_doctor_on_a_bare_box_says_to_enroll(box):
    code, checks = _checks(box)
    assert code == 1
    assert checks["config"]["status"] == "fail"
    assert "wicket-provision enroll" in checks["config"]["fix"]


def test_doctor_names_the_line_and_the_setting_of_a_typo(box):
    box.write_text('holder_key = "k"\n\nsync_entrys_s = 5\n')
    box.chmod(0o600)
    code, checks = _checks(box)
    assert code == 1
    assert checks["config"]["status"] == "fail"
    assert "edge.toml:3: unknown setting 'sync_entrys_s'" in checks["config"]["detail"]


def test_cameras_are_matched_by_device_node_or_file_and_network_ones_left_to_the_page(tmp_path):
    from edge import db as db_mod
    from provisioning import doctor

    path = tmp_path / "edge.db"
    db_mod.migrate(db_mod.open_db(path))
    video = tmp_path / "gate.mjpeg"
    video.write_bytes(b"\xff\xd8")
    conn = db_mod.connect(path)
    try:
        conn.executemany("INSERT INTO devices (id, kind, config, enabled) VALUES (?, ?, ?, ?)", [
            ("C1", "qr_camera", json.dumps({"source": "/dev/video97"}), 1),
            ("C2", "qr_camera", json.dumps({"source": str(video)}), 1),
            ("C3", "qr_camera", json.dumps({"source": "rtsp://user:pw@10.0.0.9/s"}), 1),
            ("C4", "qr_camera", json.dumps({"source": 96}), 1),
            ("C5", "qr_camera", json.dumps({"source": "/dev/video95"}), 0),  # disabled
        ])
        checks = {c.check: c for c in doctor.devices(conn)}
    finally:
        conn.close()
    assert set(checks) == {"device C1", "device C2", "device C3", "device C4"}
    assert checks["device C1"].status == "fail" and "/dev/video97" in checks["device C1"].detail
    assert checks["device C2"].status == "pass"
    assert checks["device C3"].status == "warn" and "pw" not in checks["device C3"].detail
    assert checks["device C4"].status == "fail" and "/dev/video96" in checks["device C4"].detail


def test_a_turnstile_passes_only_when_its_modbus_board_answers(enrolled):
    """The port existing is not enough: doctor reads the board's inputs through the driver."""
    board = ModbusBoardSim(unit=3)
    board.start()
    try:
        _add_device(enrolled, "N1-TS", "turnstile", {"port": board.port, "unit": 3})
        code, checks = _checks(enrolled)
        assert checks["device N1-TS"]["status"] == "pass"
        answers = checks["device N1-TS answers"]
        assert answers["status"] == "pass" and "unit 3" in answers["detail"], answers
        assert code == 0, checks
        assert any(r.function == 2 for r in board.requests)  # FC02: read discrete inputs

        board.silence = True  # powered off, or the RS-485 pair swapped: the port is still there
        code, checks = _checks(enrolled)
        assert checks["device N1-TS"]["status"] == "pass"
        answers = checks["device N1-TS answers"]
        assert answers["status"] == "fail" and "does not answer" in answers["detail"], answers
        assert "wiring" in answers["fix"]
        assert code == 1
    finally:
        board.stop()


def test_a_turnstile_the_gate_runtime_reports_down_is_a_fail(tmp_path):
    from edge import db as db_mod
    from provisioning import doctor

    path = tmp_path / "edge.db"
    db_mod.migrate(db_mod.open_db(path))
    conn = db_mod.connect(path)
    try:
        conn.executemany(
            "INSERT INTO devices (id, kind, config, enabled, state, state_detail, state_at) "
            "VALUES (?, ?, '{}', ?, ?, ?, ?)", [
                ("T1", "turnstile", 1, "down",
                 "no board answers as unit 1 on /dev/ttyUSB0: board not answering",
                 "2026-07-01T10:00:00.000000Z"),
                ("T2", "turnstile", 1, "up", "", "2026-07-01T10:00:00.000000Z"),
                ("T3", "turnstile", 0, "down", "gate runtime stopped", None),  # disabled
            ])
        checks = doctor.device_states(conn)
    finally:
        conn.close()
    assert [(c.check, c.status) for c in checks] == [("device T1 state", "fail")]
    assert "no board answers as unit 1" in checks[0].detail
    assert "RS-485" in checks[0].fix
