"""The admin pages: dashboard, devices and their tests, lanes/gates/zones, staff, audit."""

from __future__ import annotations

import json
from datetime import timedelta

from edge import hardware
from edge.engine import Engine, Scan, ScanKind
from edge.holders import HolderVault
from sync.timeutil import to_iso, utcnow


def test_every_admin_page_renders_in_both_languages(as_role):
    b = as_role("admin")
    pages = ("/dashboard", "/devices/", "/venue/", "/staff", "/audit", "/emergency/",
             "/gate/", "/gate/?lane=N1&lane=X1", "/gate/?lane=N1&mode=check", "/password")
    for lang, word in (("en", "Gate screen"), ("zh", "检票屏")):
        b.post("/language", {"lang": lang})
        for url in pages:
            r = b.get(url)
            assert r.status_code == 200, url
            assert word in r.data.decode(), (lang, url)
    assert b.get("/devices/nope").status_code == 404


def test_dashboard_counts_entries_people_inside_devices_and_sync(as_role, appliance):
    conn = appliance["conn"]
    venue = appliance["venue"]
    engine = Engine(conn, HolderVault(appliance["holder_key"]))
    tickets = [t for t in venue.tickets.values() if t.session_id == 1 and t.zone_id in (1, 2)]
    for t in tickets[:3]:
        assert engine.decide(Scan(ScanKind.QR, t.code), "N1").reason == "OK"
    engine.decide(Scan(ScanKind.QR, tickets[0].code), "N2")  # repeat: refused
    engine.decide(Scan(ScanKind.QR, tickets[1].code), "X1")  # left again
    now = utcnow()
    conn.execute("INSERT INTO devices (id, kind, state, state_at) VALUES ('N1-CAM', 'qr_camera', "
                 "'up', ?), ('N2-CAM', 'qr_camera', 'up', ?)",
                 (to_iso(now), to_iso(now - timedelta(minutes=5))))
    conn.execute("UPDATE sync_state SET last_ok_at = ? WHERE stream = 'allowlist'",
                 (to_iso(now - timedelta(seconds=42)),))
    conn.execute("INSERT INTO appliance_state (key, value) VALUES ('clock_offset_ms', '-120')")
    conn.execute("UPDATE entries SET acked_at = ?, ack_status = 'refused' WHERE seq = 1",
                 (to_iso(now),))
    d = as_role("supervisor").get("/dashboard.json").json
    lanes = {ln["lane"]: ln for ln in d["lanes"]}
    assert (lanes["N1"]["admitted"], lanes["N1"]["refused"]) == (3, 0)
    assert (lanes["N2"]["admitted"], lanes["N2"]["refused"]) == (0, 1)
    assert lanes["X1"]["admitted"] == 1
    gates = {gt["gate"]: gt for gt in d["gates"]}
    assert (gates["G1"]["admitted"], gates["G1"]["refused"]) == (3, 1)
    assert d["inside"] == 2
    devices = {dv["id"]: dv for dv in d["devices"]}
    assert devices["N1-CAM"]["silent"] is False and devices["N2-CAM"]["silent"] is True
    s = d["sync"]
    assert 40 <= s["down_lag_s"] < 100 and s["last_up_at"] == to_iso(now)
    assert (s["queued"], s["refused"], s["clock_offset_ms"]) == (4, 1, -120)
    page = as_role("admin").get("/dashboard").data.decode()
    assert 'data-url="/dashboard.json' in page and "dashboard.js" in page


def test_hardware_listings_cope_with_nothing_present():
    for listing in (hardware.serial_ports(), hardware.cameras(), hardware.pcsc_readers()):
        assert isinstance(listing.items, list)
        assert listing.items or listing.note  # empty lists say why
    assert hardware.pcsc_readers().items == [] or hardware.pcsc_readers().note == ""


def test_devices_add_edit_disable_test_and_delete(as_role, appliance):
    conn = appliance["conn"]
    b = as_role("admin")
    page = b.get("/devices/").data.decode()
    assert "Found on this box" in page and "PC/SC" in page
    r = b.post("/devices/", {"id": "N1-GATE", "kind": "turnstile", "name": "North 1 turnstile",
                             "lane_id": "1", "connection": "/dev/ttyUSB0", "model": "modbus",
                             "setting.modbus.baudrate": "19200", "enabled": "1"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/devices/N1-GATE")
    row = conn.execute("SELECT kind, lane_id, config, enabled FROM devices WHERE id = 'N1-GATE'"
                       ).fetchone()
    assert row[:2] == ("turnstile", 1) and row[3] == 1
    assert json.loads(row[2]) == {"model": "modbus", "baudrate": 19200, "port": "/dev/ttyUSB0"}
    # refused input keeps the form and changes nothing
    for bad in ({"id": "N1-GATE", "kind": "turnstile"}, {"id": "bad id!", "kind": "turnstile"},
                {"id": "X", "kind": "toaster"}, {"id": "Y", "kind": "qr_camera",
                                                 "settings": "[1]"},
                {"id": "Z", "kind": "turnstile", "lane_id": "99"}):
        assert b.post("/devices/", bad).status_code == 400, bad
    assert conn.execute("SELECT count(*) FROM devices").fetchone() == (1,)
    # edit: a camera on a URL
    r = b.post("/devices/N1-GATE", {"kind": "qr_camera", "connection": "rtsp://10.0.0.5/s1",
                                    "lane_id": "1", "enabled": "1"})
    assert r.status_code == 303
    assert json.loads(conn.execute("SELECT config FROM devices").fetchone()[0]) == \
        {"source": "rtsp://10.0.0.5/s1"}
    # test: a command for the runtime, shown as waiting, then with its result
    r = b.post("/devices/N1-GATE/test")
    assert r.status_code == 303
    cid, command, args, status = conn.execute(
        "SELECT id, command, args, status FROM device_commands").fetchone()
    assert (command, json.loads(args), status) == ("test", {"action": "snapshot"}, "pending")
    page = b.get("/devices/N1-GATE").data.decode()
    assert "waiting for the gate runtime" in page
    assert b.get(f"/devices/commands/{cid}.json").json["status"] == "pending"
    conn.execute("UPDATE device_commands SET status = 'done', done_at = ?, result = ? "
                 "WHERE id = ?", (to_iso(utcnow()), json.dumps({
                     "ok": True, "message": "1 code decoded", "codes": ["T00001001"],
                     "snapshot_png": "iVBORw0KGgo="}), cid))
    page = b.get("/devices/N1-GATE").data.decode()
    assert "1 code decoded" in page and "data:image/png;base64,iVBORw0KGgo=" in page
    assert b.get(f"/devices/commands/{cid}.json").json["result"]["codes"] == ["T00001001"]
    # a test nobody carried out expires
    conn.execute("UPDATE device_commands SET status = 'pending', expires_at = ? WHERE id = ?",
                 (to_iso(utcnow() - timedelta(seconds=1)), cid))
    assert b.get(f"/devices/commands/{cid}.json").json["status"] == "expired"
    # disable: no test while disabled
    assert b.post("/devices/N1-GATE/enabled", {"enabled": "0"}).status_code == 303
    assert conn.execute("SELECT enabled FROM devices").fetchone() == (0,)
    r = b.client.post("/devices/N1-GATE/test", headers={"X-CSRF-Token": b.csrf,
                                                        "X-Requested-With": "fetch"})
    assert r.status_code == 409
    assert b.post("/devices/N1-GATE/enabled", {"enabled": "1"}).status_code == 303
    # delete
    assert b.post("/devices/N1-GATE/delete").status_code == 303
    assert conn.execute("SELECT count(*) FROM devices").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM device_commands").fetchone() == (0,)
    actions = [a for (a,) in conn.execute("SELECT action FROM audit_log ORDER BY id")
               if a.startswith("device.")]
    assert actions == ["device.create", "device.update", "device.test", "device.disable",
                       "device.enable", "device.delete"]


def test_gate_policy_lane_and_zone_edits_reach_the_engine(as_role, appliance):
    conn = appliance["conn"]
    venue = appliance["venue"]
    engine = Engine(conn, HolderVault(appliance["holder_key"]))
    b = as_role("admin")
    wrong = venue.tickets[venue.named["wrong_gate"]]  # zone 3, refused at gate G1
    assert engine.check(Scan(ScanKind.QR, wrong.code), "N1").reason == "WRONG_GATE"
    r = b.post("/venue/gates", {"id": "1", "code": "G1", "name": "Gate 1 North",
                                "zones": ["1", "2", "3"], "realname_mode": "ticket",
                                "open_before_min": "45", "close_after_min": "30",
                                "reentry": "1"})
    assert r.status_code == 303
    assert engine.check(Scan(ScanKind.QR, wrong.code), "N1").reason == "OK"
    row = conn.execute("SELECT reentry, open_before_min, close_after_min FROM gates WHERE id = 1"
                       ).fetchone()
    assert row == (1, 45, 30)
    detail = json.loads(conn.execute("SELECT detail FROM audit_log WHERE action = 'gate.update'"
                                     ).fetchone()[0])
    assert detail["before"]["zones"] == [1, 2] and detail["after"]["zones"] == [1, 2, 3]
    for bad in ({"code": "G9", "name": ""}, {"code": "G9", "name": "x", "open_before_min": "-1",
                                             "close_after_min": "1"},
                {"code": "G9", "name": "x", "open_before_min": "1", "close_after_min": "1",
                 "zones": ["77"]},
                {"code": "G9", "name": "x", "open_before_min": "1", "close_after_min": "1",
                 "realname_mode": "face"}):
        b.post("/venue/gates", bad)
        assert conn.execute("SELECT count(*) FROM gates WHERE code = 'G9'").fetchone() == (0,)
    # a new zone and gate, and a lane with its devices
    assert b.post("/venue/zones", {"code": "E", "name": "West Stand"}).status_code == 303
    zone_id = conn.execute("SELECT id FROM zones WHERE code = 'E'").fetchone()[0]
    assert b.post("/venue/gates", {"code": "G5", "name": "Gate 5 West", "zones": [str(zone_id)],
                                   "realname_mode": "ticket_and_id", "open_before_min": "30",
                                   "close_after_min": "60"}).status_code == 303
    gate_id = conn.execute("SELECT id FROM gates WHERE code = 'G5'").fetchone()[0]
    conn.execute("INSERT INTO devices (id, kind) VALUES ('W1-CAM', 'qr_camera'), "
                 "('W1-GATE', 'turnstile')")
    r = b.post("/venue/lanes", {"code": "W1", "name": "West 1", "gate_id": str(gate_id),
                                "direction": "in", "passage_timeout_s": "8", "enabled": "1",
                                "devices": ["W1-CAM", "W1-GATE"]})
    assert r.status_code == 303
    lane = conn.execute("SELECT id, gate_id, passage_timeout_s FROM lanes WHERE code = 'W1'"
                        ).fetchone()
    assert lane[1:] == (gate_id, 8)
    assert conn.execute("SELECT id FROM devices WHERE lane_id = ? ORDER BY id", (lane[0],)
                        ).fetchall() == [("W1-CAM",), ("W1-GATE",)]
    assert engine.check(Scan(ScanKind.QR, wrong.code), "W1").reason == "WRONG_GATE"
    # the lane's devices change with the form
    b.post("/venue/lanes", {"id": str(lane[0]), "code": "W1", "gate_id": str(gate_id),
                            "direction": "out", "passage_timeout_s": "8", "enabled": "1",
                            "devices": ["W1-GATE"]})
    assert conn.execute("SELECT id FROM devices WHERE lane_id = ?", (lane[0],)).fetchall() == \
        [("W1-GATE",)]
    # a duplicate code is refused
    r = b.post("/venue/lanes", {"code": "N1", "gate_id": "1", "direction": "in",
                                "passage_timeout_s": "5"})
    assert r.status_code == 303
    assert conn.execute("SELECT count(*) FROM lanes WHERE code = 'N1'").fetchone() == (1,)
    assert "Another lane already has this code" in b.get("/venue/").data.decode()


def test_staff_accounts_page(as_role, appliance):
    conn = appliance["conn"]
    b = as_role("admin")
    r = b.post("/staff", {"username": "li.steward", "role": "gate", "lang": "zh",
                          "password": "Temporary-gate-5"})
    assert r.status_code == 302
    row = conn.execute("SELECT role, lang, password_changed_at FROM staff_users "
                       "WHERE username = 'li.steward'").fetchone()
    assert row == ("gate", "zh", None)
    assert b.post("/staff", {"username": "x", "role": "gate", "password": "weak"}
                  ).status_code == 400
    assert b.post("/staff", {"username": "li.steward", "role": "gate",
                             "password": "Temporary-gate-5"}).status_code == 400
    page = b.get("/staff").data.decode()
    assert "li.steward" in page and "must choose one" in page
    assert "password_hash" not in page and "scrypt$" not in page


def test_audit_log_filters(as_role, appliance):
    conn = appliance["conn"]
    b = as_role("admin")
    b.post("/devices/", {"id": "A1", "kind": "rfid_reader", "enabled": "1"})
    b.post("/devices/A1/enabled", {"enabled": "0"})
    b.post("/venue/zones", {"code": "Q", "name": "Quiet Zone"})
    all_rows = b.get("/audit").data.decode()
    assert "device.create" in all_rows and "zone.create" in all_rows
    only = b.get("/audit?action=device.").data.decode().split("<tbody>")[1]
    assert "device.create" in only and "device.disable" in only and "zone.create" not in only
    subject = b.get("/audit?subject=device:A1&action=device.disable").data.decode()
    assert "device.disable" in subject and "device.create" not in subject.split("<tbody>")[1]
    none = b.get("/audit?actor=nobody").data.decode()
    assert "Nothing recorded that matches" in none
    future = b.get("/audit?since=2999-01-01").data.decode()
    assert "Nothing recorded that matches" in future
    # paging: more than a page of rows gives a link to older ones
    for _ in range(120):
        conn.execute("INSERT INTO audit_log (at, actor, action) VALUES (?, 'x', 'bulk.test')",
                     (to_iso(utcnow()),))
    page = b.get("/audit?action=bulk.test").data.decode()
    assert "Older" in page and page.count("bulk.test</td>") == 100


def test_the_dashboard_shows_why_the_hub_refused_entries_in_both_languages(as_role, appliance):
    conn = appliance["conn"]
    engine = Engine(conn, HolderVault(appliance["holder_key"]))
    tickets = [t for t in appliance["venue"].tickets.values() if t.session_id == 1
               and t.zone_id in (1, 2)]
    for t in tickets[:3]:
        engine.decide(Scan(ScanKind.QR, t.code), "N1")
    now = to_iso(utcnow())
    conn.executemany("UPDATE entries SET acked_at = ?, ack_status = 'refused', ack_reason = ? "
                     "WHERE seq = ?", [(now, "other_venue", 1), (now, "other_venue", 2),
                                       (now, "bad_request", 3)])
    d = as_role("supervisor").get("/dashboard.json").json
    assert d["sync"]["refused_by_reason"] == [
        {"reason": "other_venue", "count": 2, "words": "a ticket or session of another venue"},
        {"reason": "bad_request", "count": 1, "words": "bad_request"}]
    page = as_role("supervisor").get("/dashboard").data.decode()
    table = page[page.index('id="refused-by-reason"'):]
    assert "a ticket or session of another venue</td><td>2<" in table
    sup = as_role("supervisor")
    sup.post("/language", {"lang": "zh"})
    assert "其他场馆的票或场次" in sup.get("/dashboard").data.decode()


def test_an_unknown_device_setting_is_refused_with_its_name_on_add_and_edit(as_role, appliance):
    """A device whose settings come as JSON (a turnstile's come from its driver's own form,
    tested in test_device_forms.py)."""
    conn = appliance["conn"]
    b = as_role("admin")
    r = b.post("/devices/", {"id": "N1-CAM", "kind": "qr_camera", "lane_id": "1",
                             "connection": "/dev/video0", "settings": '{"fsp": 15}',
                             "enabled": "1"})
    assert r.status_code == 400
    assert "unknown setting(s) fsp" in r.data.decode()
    assert conn.execute("SELECT count(*) FROM devices").fetchone() == (0,)
    r = b.post("/devices/", {"id": "N1-CAM", "kind": "qr_camera", "lane_id": "1",
                             "connection": "/dev/video0", "settings": '{"fps": "fast"}',
                             "enabled": "1"})
    assert r.status_code == 400 and "fps" in r.data.decode()
    assert b.post("/devices/", {"id": "N1-CAM", "kind": "qr_camera", "lane_id": "1",
                                "connection": "/dev/video0", "enabled": "1"}).status_code == 303
    r = b.post("/devices/N1-CAM", {"kind": "qr_camera", "lane_id": "1", "enabled": "1",
                                   "connection": "/dev/video0", "settings": '{"fsp": 15}'})
    assert r.status_code == 400 and "fsp" in r.data.decode()
    assert json.loads(conn.execute("SELECT config FROM devices WHERE id = 'N1-CAM'"
                                   ).fetchone()[0]) == {"source": "/dev/video0"}


def test_an_admin_lets_a_gate_admit_on_typed_ticket_numbers(as_role, appliance):
    conn = appliance["conn"]
    number = appliance["venue"].tickets[appliance["venue"].named["seated"]].number
    engine = Engine(conn, HolderVault(appliance["holder_key"]))
    typed = Scan(ScanKind.MANUAL, number, staff="gate")
    assert engine.check(typed, "N1").detail == "ticket numbers are not accepted at this gate"
    b = as_role("admin")
    assert 'name="manual_entry"' in b.get("/venue/").data.decode()
    gate = {"id": "1", "code": "G1", "name": "Gate 1 North", "zones": ["1", "2"],
            "realname_mode": "ticket", "open_before_min": "30", "close_after_min": "60"}
    assert b.post("/venue/gates", {**gate, "manual_entry": "1"}).status_code == 303
    assert conn.execute("SELECT manual_entry FROM gates WHERE id = 1").fetchone() == (1,)
    assert engine.check(typed, "N1").reason == "OK"
    detail = json.loads(conn.execute("SELECT detail FROM audit_log WHERE action = 'gate.update'"
                                     ).fetchone()[0])
    assert detail["before"]["manual_entry"] is False and detail["after"]["manual_entry"] is True
    assert b.post("/venue/gates", gate).status_code == 303  # unticked: off again
    assert conn.execute("SELECT manual_entry FROM gates WHERE id = 1").fetchone() == (0,)
