"""The gate-staff screen: verdicts, repeats, refusals, the help desk's check, the override."""

from __future__ import annotations

import json

from sync.sample import ZONES


def code_of(venue, name):
    return venue.tickets[venue.named[name]].code


def test_the_screen_lists_lanes_and_opens_the_chosen_ones(as_role):
    b = as_role("gate")
    r = b.get("/gate/")
    assert r.status_code == 200 and b'value="N1"' in r.data and b'value="X1"' in r.data
    r = b.get("/gate/?lane=N1&lane=S1&lane=nope")
    page = r.data.decode()
    assert page.count('class="lane-panel"') == 2
    assert 'data-lane="N1"' in page and 'data-lane="S1"' in page
    assert "autofocus" in page and 'class="wedge-input"' in page
    assert "Open anyway" not in page  # gate staff cannot override


def test_admit_then_repeat_then_refusals(as_role, appliance):
    venue = appliance["venue"]
    b = as_role("gate")
    seated = venue.tickets[venue.named["seated"]]
    r = b.post_json("/gate/scan.json", {"lane": "N1", "code": seated.code})
    assert r.status_code == 200
    v = r.json
    assert (v["reason"], v["colour"], v["admitted"], v["open_lane"]) == ("OK", "green", True,
                                                                         True)
    assert v["words"] == "Valid ticket: go ahead"
    assert v["ticket"]["zone"] == ZONES[seated.zone_id - 1][2] and v["ticket"]["seat"]
    assert v["entry_id"]
    # the runtime is asked to open the lane for this entry
    cmd = appliance["conn"].execute(
        "SELECT command, lane_id, args, status FROM device_commands").fetchall()
    assert len(cmd) == 1 and cmd[0][0] == "open_lane" and cmd[0][3] == "pending"
    assert json.loads(cmd[0][2])["entry_id"] == v["entry_id"]

    r = b.post_json("/gate/scan.json", {"lane": "N2", "code": seated.code})
    v = r.json
    assert (v["reason"], v["colour"], v["open_lane"]) == ("ALREADY_ENTERED", "orange", False)
    assert v["first_entry_at"]  # venue-local time of the first entry
    assert v["words"] == "Ticket already used"

    for name, reason in (("refunded", "REVOKED"), ("blocked", "BLOCKED"),
                         ("wrong_gate", "WRONG_GATE")):
        r = b.post_json("/gate/scan.json", {"lane": "N1", "code": code_of(venue, name)})
        assert (r.json["reason"], r.json["colour"]) == (reason, "red"), name
    r = b.post_json("/gate/scan.json", {"lane": "N1", "code": "garbage-not-a-code"})
    assert r.json["reason"] == "UNKNOWN" and r.json["colour"] == "red"
    # a ticket number wedged or pasted as a scan proves nothing
    other = venue.tickets[venue.named["other_holder"]]
    r = b.post_json("/gate/scan.json", {"lane": "N1", "code": other.number})
    assert r.json["reason"] == "UNKNOWN" and not r.json["open_lane"]
    kinds = [k for (k,) in appliance["conn"].execute("SELECT scan_kind FROM entries ORDER BY seq")]
    assert set(kinds) == {"qr"}
    assert len(kinds) == 7
    # bad requests get clear errors and record nothing
    assert b.post_json("/gate/scan.json", {"lane": "ZZ", "code": "x"}).status_code == 400
    assert b.post_json("/gate/scan.json", {"lane": "N1", "code": "  "}).status_code == 400
    r = b.post_json("/gate/scan.json", {"lane": "N1", "code": other.number, "kind": "manual"})
    assert r.status_code == 400 and r.json["message"].startswith("kind:")
    assert appliance["conn"].execute("SELECT count(*) FROM entries").fetchone() == (7,)


def test_chinese_verdict_words(as_role, appliance):
    b = as_role("gate")
    b.post("/language", {"lang": "zh"})
    r = b.post_json("/gate/scan.json", {"lane": "N1", "code": "nothing"})
    assert r.json["words"] == "无法识别此票"


def test_check_without_admitting_records_nothing_and_never_opens(as_role, appliance):
    venue = appliance["venue"]
    conn = appliance["conn"]
    b = as_role("gate")
    code = venue.tickets[venue.named["seated"]].code
    for _ in range(2):
        r = b.post_json("/gate/scan.json", {"lane": "N1", "code": code, "mode": "check"})
        assert r.json["reason"] == "OK" and r.json["checked_only"] is True
        assert r.json["open_lane"] is False and r.json["entry_id"] is None
    assert conn.execute("SELECT count(*) FROM entries").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM device_commands").fetchone() == (0,)
    assert [a for (a,) in conn.execute("SELECT action FROM audit_log WHERE action = "
                                       "'entry.check'")] == ["entry.check", "entry.check"]
    # the ticket is still unused: the real scan admits
    assert b.post_json("/gate/scan.json", {"lane": "N1", "code": code}).json["reason"] == "OK"
    r = b.post_json("/gate/scan.json", {"lane": "N1", "code": code, "mode": "check"})
    assert r.json["reason"] == "ALREADY_ENTERED" and r.json["first_entry_at"]
    assert conn.execute("SELECT count(*) FROM entries").fetchone() == (1,)


def test_override_needs_a_supervisor_and_a_reason(as_role, appliance):
    venue = appliance["venue"]
    conn = appliance["conn"]
    gate, sup = as_role("gate"), as_role("supervisor")
    refused = sup.post_json("/gate/scan.json", {"lane": "N1",
                                                "code": code_of(venue, "wrong_gate")}).json
    assert refused["reason"] == "WRONG_GATE"
    body = {"lane": "N1", "reason": "zone C guest escorted by steward",
            "entry_id": refused["entry_id"]}
    r = gate.post_json("/gate/override.json", body)
    assert r.status_code == 403
    r = sup.post_json("/gate/override.json", {**body, "reason": "  "})
    assert r.status_code == 400
    assert "Open anyway" in sup.get("/gate/?lane=N1").data.decode()
    r = sup.post_json("/gate/override.json", body)
    assert r.status_code == 201
    entry_id = r.json["entry_id"]
    row = conn.execute("SELECT admitted, reason, detail, ticket_id, scan_kind FROM entries "
                       "WHERE id = ?", (entry_id,)).fetchone()
    assert row[0] == 1 and row[1] == "OK" and row[4] == "override"
    assert row[2] == "override by supervisor: zone C guest escorted by steward"
    assert row[3] == venue.named["wrong_gate"]
    cmd = conn.execute("SELECT command, status, args FROM device_commands WHERE id = ?",
                       (r.json["command_id"],)).fetchone()
    assert cmd[0] == "open_lane" and cmd[1] == "pending"
    assert json.loads(cmd[2]) == {"entry_id": entry_id, "why": "override"}
    audit = conn.execute("SELECT actor, subject, detail FROM audit_log WHERE action = "
                         "'entry.override'").fetchone()
    assert audit[0] == "supervisor" and audit[1] == "lane:N1"
    assert json.loads(audit[2])["refused_entry_id"] == refused["entry_id"]
    # the ticket now counts as inside
    again = sup.post_json("/gate/scan.json", {"lane": "S1", "code": code_of(venue, "wrong_gate")})
    assert again.json["reason"] == "ALREADY_ENTERED"
    # an override of an admitted scan would count the person twice: refused
    r = sup.post_json("/gate/override.json", {**body, "entry_id": entry_id})
    assert r.status_code == 409
    # without a scan it opens the lane for nobody's ticket
    r = sup.post_json("/gate/override.json", {"lane": "N1", "reason": "lane jammed, retry"})
    assert r.status_code == 201
    assert conn.execute("SELECT ticket_id, admitted FROM entries WHERE id = ?",
                        (r.json["entry_id"],)).fetchone() == (None, 1)
    # an unknown refused entry is refused, and nothing is written
    before = conn.execute("SELECT count(*) FROM entries").fetchone()
    r = sup.post_json("/gate/override.json", {**body, "entry_id": "0" * 36})
    assert r.status_code == 404
    assert conn.execute("SELECT count(*) FROM entries").fetchone() == before


def test_an_override_is_stamped_like_the_engines_entries(as_role, appliance):
    """The override's entry goes through the engine's writer: the cursor is the furthest of
    the allowlist and revocation streams (the screen once took the allowlist's alone), the
    day and clock offset are the engine's, and its detail has a code."""
    venue, conn = appliance["venue"], appliance["conn"]
    (allowlist,) = conn.execute(
        "SELECT cursor FROM sync_state WHERE stream = 'allowlist'").fetchone()
    conn.execute("UPDATE sync_state SET cursor = ? WHERE stream = 'revocations'",
                 (allowlist + 57,))
    conn.execute("INSERT INTO appliance_state (key, value) VALUES ('clock_offset_ms', '-1234') "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value")
    sup = as_role("supervisor")
    refused = sup.post_json("/gate/scan.json", {"lane": "N1",
                                                "code": code_of(venue, "wrong_gate")}).json
    r = sup.post_json("/gate/override.json", {"lane": "N1", "reason": "escorted by steward",
                                              "entry_id": refused["entry_id"]})
    assert r.status_code == 201
    columns = "cursor, clock_offset_ms, day, lane_id, gate_id, direction"
    engine_row = conn.execute(f"SELECT {columns} FROM entries WHERE id = ?",
                              (refused["entry_id"],)).fetchone()
    override_row = conn.execute(f"SELECT {columns} FROM entries WHERE id = ?",
                                (r.json["entry_id"],)).fetchone()
    assert engine_row[0] == allowlist + 57 and engine_row[1] == -1234
    assert override_row == engine_row
    coded = conn.execute("SELECT detail, detail_code, detail_params FROM entries WHERE id = ?",
                         (r.json["entry_id"],)).fetchone()
    assert coded[0] == "override by supervisor: escorted by steward"
    assert (coded[1], json.loads(coded[2])) == (
        "override", {"user": "supervisor", "why": "escorted by steward"})


def test_the_live_feed_shows_every_source_with_masked_holders(as_role, appliance):
    from edge.engine import Engine, Scan, ScanKind
    from edge.holders import HolderVault

    venue = appliance["venue"]
    conn = appliance["conn"]
    b = as_role("gate")
    first = b.get("/gate/feed.json?lane=N1").json
    assert first["items"] == [] and first["last_seq"] == 0
    # a scan from a lane's own reader (the gate runtime), not from the screen
    engine = Engine(conn, HolderVault(appliance["holder_key"]))
    realname = next(t for t in venue.tickets.values() if t.holder_id and t.zone_id in (1, 2))
    d = engine.decide(Scan(ScanKind.QR, realname.code, device_id="N1-CAM"), "N1")
    assert d.reason == "OK"
    engine.decide(Scan(ScanKind.QR, realname.code, device_id="N2-CAM"), "N2")
    feed = b.get("/gate/feed.json?lane=N1&lane=N2").json
    assert [i["reason"] for i in feed["items"]] == ["ALREADY_ENTERED", "OK"]
    item = feed["items"][1]
    name, _, number = venue.holders[realname.holder_id]
    assert item["holder"]["name"] != name and item["holder"]["name"][0] == name[0]
    assert number not in json.dumps(feed) and item["holder"]["document"].startswith(number[:4])
    assert item["source"] == "N1-CAM"
    assert feed["items"][0]["first_entry_at"]
    later = b.get(f"/gate/feed.json?lane=N1&after={feed['last_seq']}").json
    assert later["items"] == []
    only_n2 = b.get("/gate/feed.json?lane=N2").json
    assert [i["lane"] for i in only_n2["items"]] == ["N2"]


def test_engine_details_are_shown_in_chinese(as_role, appliance):
    venue = appliance["venue"]
    b = as_role("supervisor")
    b.post("/language", {"lang": "zh"})
    seen = {}
    for name, lane in (("seated", "N1"), ("seated", "N2"), ("refunded", "N1"),
                       ("blocked", "N1"), ("wrong_gate", "N1"), ("evening", "N1"),
                       ("realname", "S1")):
        r = b.post_json("/gate/scan.json", {"lane": lane, "code": code_of(venue, name)}).json
        seen[name if lane != "N2" else "repeat"] = r["detail"]
    r = b.post_json("/gate/scan.json", {"lane": "N1", "code": "x"}).json
    seen["short"] = r["detail"]
    _allow_numbers(appliance["conn"])
    r = b.post_json("/gate/manual.json", {"lane": "N1", "code": "x"}).json
    seen["typed"] = r["detail"]
    assert seen["repeat"] == "已在场内"
    assert seen["wrong_gate"] == ("South Stand 区不能从本入口进入，请走：Gate 2 South, "
                                  "Gate 3 ID only, Gate 4 Concourse")
    assert seen["realname"] == "实名票：请同时读取持票人身份证"
    assert seen["typed"] == "既不是票码，也不是已知票号"
    assert seen["short"] == "不是票码"
    assert seen["refunded"] == "票已失效：已退票"
    assert seen["evening"].startswith("Evening final：") and "开始入场" in seen["evening"]
    assert seen["blocked"] == "票在黑名单中"
    assert seen["seated"] == ""
    feed = b.get("/gate/feed.json?lane=N2").json["items"]
    assert feed[0]["detail"] == "已在场内"
    # the entries keep the engine's English for the hub and the logs
    assert appliance["conn"].execute(
        "SELECT detail FROM entries WHERE reason = 'ALREADY_ENTERED'").fetchone() == \
        ("already inside",)


def _turnstile(conn, lane_id: int, state: str, seen_s: float = 5) -> None:
    from datetime import timedelta

    from sync.timeutil import to_iso, utcnow

    at = to_iso(utcnow() - timedelta(seconds=seen_s))
    conn.execute("INSERT INTO devices (id, lane_id, kind, name, config, state, state_detail, "
                 "state_at, seen_at) VALUES (?, ?, 'turnstile', '', '{}', ?, ?, ?, ?)",
                 (f"TS{lane_id}", lane_id, state, "no board answers" if state == "down" else "",
                  at, at))


def test_a_valid_ticket_at_a_lane_whose_turnstile_is_down_is_amber_and_stays_unused(
        as_role, appliance):
    venue, conn = appliance["venue"], appliance["conn"]
    _turnstile(conn, 1, "down")
    b = as_role("gate")
    seated = code_of(venue, "seated")
    v = b.post_json("/gate/scan.json", {"lane": "N1", "code": seated}).json
    assert (v["reason"], v["colour"], v["words"]) == ("OK", "amber", "Valid — lane did not open")
    assert v["detail"] == "lane not opened: turnstile TS1 is down"
    assert v["admitted"] is False and v["open_lane"] is False and v["at"]
    # nothing asked of the runtime; the entry is annulled, never sent as an admission
    assert conn.execute("SELECT count(*) FROM device_commands").fetchone() == (0,)
    assert conn.execute("SELECT admitted, passage FROM entries WHERE id = ?",
                        (v["entry_id"],)).fetchone() == (0, "failed")
    item = b.get("/gate/feed.json?lane=N1").json["items"][0]
    assert (item["colour"], item["words"], item["not_opened"]) == (
        "amber", "Valid — lane did not open", True)
    # a turnstile not reporting is no better; the ticket was never used, so it is valid again
    _turnstile(conn, 2, "up", seen_s=600)
    v = b.post_json("/gate/scan.json", {"lane": "N2", "code": seated}).json
    assert v["colour"] == "amber" and v["detail"] == "lane not opened: turnstile TS2 is not " \
        "reporting"
    b.post("/language", {"lang": "zh"})
    v = b.post_json("/gate/scan.json", {"lane": "N1", "code": seated}).json
    assert v["words"] == "票有效——通道未打开" and v["detail"] == "通道未打开：闸机 TS1 状态：离线"


def test_an_admission_the_runtime_could_not_let_through_turns_amber_in_the_feed(
        as_role, appliance):
    from edge import passages
    from edge.engine import Engine, Scan, ScanKind
    from edge.holders import HolderVault
    from sync.timeutil import utcnow

    venue, conn = appliance["venue"], appliance["conn"]
    _turnstile(conn, 1, "up")
    b = as_role("gate")
    v = b.post_json("/gate/scan.json", {"lane": "N1", "code": code_of(venue, "seated")}).json
    assert (v["colour"], v["settled"]) == ("green", False)  # the lane is opening: watched
    watch = f"/gate/feed.json?lane=N1&watch={v['entry_id']}"
    (update,) = b.get(watch).json["updates"]
    assert update["settled"] is False and update["colour"] == "green"
    # the runtime takes the command, and the turnstile fails to open
    conn.execute("UPDATE device_commands SET status = 'failed'")
    assert passages.await_passage(conn, v["entry_id"])
    passages.annul(conn, v["entry_id"], utcnow(), passages.FAILED,
                   "lane not opened: flash relay 0: board refused with exception 02")
    (update,) = b.get(watch).json["updates"]
    assert (update["settled"], update["colour"], update["admitted"]) == (True, "amber", False)
    assert update["detail"] == "lane not opened: flash relay 0: board refused with exception 02"
    # a lane's own camera scan whose holder never walked through
    engine = Engine(conn, HolderVault(appliance["holder_key"]))
    other = venue.tickets[venue.named["other_holder"]]
    d = engine.decide(Scan(ScanKind.QR, other.code, device_id="N1-CAM"), "N1", passage=True)
    item = b.get("/gate/feed.json?lane=N1").json["items"][0]
    assert (item["entry_id"], item["colour"], item["settled"]) == (d.entry_id, "green", False)
    passages.annul(conn, d.entry_id, utcnow(), passages.TIMEOUT, "no passage within 5 s")
    (update,) = b.get(f"/gate/feed.json?lane=N1&watch={d.entry_id}").json["updates"]
    assert (update["colour"], update["words"], update["detail"]) == (
        "amber", "Valid — lane did not open", "no passage within 5 s")


def test_the_screen_shows_each_lanes_devices_and_the_verdict_fade_setting(as_role, appliance):
    from sync.timeutil import to_iso, utcnow

    conn = appliance["conn"]
    _turnstile(conn, 1, "down")
    now = to_iso(utcnow())
    conn.execute("INSERT INTO devices (id, lane_id, kind, name, config, state, state_at, "
                 "seen_at) VALUES ('CAM1', 1, 'qr_camera', '', '{}', 'up', ?, ?)", (now, now))
    b = as_role("gate")
    page = b.get("/gate/?lane=N1&lane=N2").data.decode()
    assert 'data-fade-s="8.0"' in page
    assert '<li class="state-up" data-device="CAM1"' in page and "QR camera CAM1: up" in page
    assert '<li class="state-down" data-device="TS1"' in page and "turnstile TS1: down" in page
    assert "No devices on this lane" in page  # N2
    devices = b.get("/gate/feed.json?lane=N1&lane=N2").json["devices"]
    assert [(d["id"], d["state"]) for d in devices["N1"]] == [("CAM1", "up"), ("TS1", "down")]
    assert devices["N2"] == []


def _allow_numbers(conn, gate_code="G1", allowed=True):
    conn.execute("UPDATE gates SET manual_entry = ? WHERE code = ?", (int(allowed), gate_code))


def test_typed_ticket_numbers_only_where_the_gate_allows_them(as_role, appliance):
    venue, conn = appliance["venue"], appliance["conn"]
    b = as_role("gate")
    number = venue.tickets[venue.named["seated"]].number
    # off by default: no field on the screen, and the route refuses without recording
    page = b.get("/gate/?lane=N1").data.decode()
    assert 'class="manual-input"' not in page
    r = b.post_json("/gate/manual.json", {"lane": "N1", "code": number})
    assert r.status_code == 403
    assert conn.execute("SELECT count(*) FROM entries").fetchone() == (0,)

    _allow_numbers(conn)
    page = b.get("/gate/?lane=N1&lane=S1").data.decode()
    assert page.count('class="manual-input"') == 1  # N1's gate only
    assert b.post_json("/gate/manual.json", {"lane": "S1", "code": number}).status_code == 403
    r = b.post_json("/gate/manual.json", {"lane": "N1", "code": f" {number} "})
    assert r.status_code == 200
    v = r.json
    assert (v["reason"], v["open_lane"], v["by_number"], v["staff"]) == ("OK", True, True, "gate")
    row = conn.execute("SELECT scan_kind, staff, admitted, device_id FROM entries WHERE id = ?",
                       (v["entry_id"],)).fetchone()
    assert row == ("manual", "gate", 1, "web:gate")
    assert conn.execute("SELECT action, actor FROM audit_log WHERE action = 'entry.manual'"
                        ).fetchall() == [("entry.manual", "gate")]
    cmd = conn.execute("SELECT command, args FROM device_commands").fetchone()
    assert cmd[0] == "open_lane" and json.loads(cmd[1])["why"] == "manual"
    # the feed says how the entry was admitted, and by whom
    item = b.get("/gate/feed.json?lane=N1").json["items"][0]
    assert item["by_number"] is True and item["staff"] == "gate"
    # the number is still only a way to find the ticket: it is used now
    r = b.post_json("/gate/manual.json", {"lane": "N1", "code": number})
    assert r.json["reason"] == "ALREADY_ENTERED" and r.json["by_number"] is False
    assert b.post_json("/gate/manual.json", {"lane": "N1", "code": " "}).status_code == 400
    assert b.post_json("/gate/manual.json", {"lane": "ZZ", "code": number}).status_code == 400


def test_typed_numbers_need_a_signed_in_staff_member(browser, appliance):
    _allow_numbers(appliance["conn"])
    number = appliance["venue"].tickets[appliance["venue"].named["seated"]].number
    r = browser.post_json("/gate/manual.json", {"lane": "N1", "code": number})
    assert r.status_code in (400, 401)  # tests/edge/web/test_routes.py: the login check
    assert appliance["conn"].execute("SELECT count(*) FROM entries").fetchone() == (0,)


def test_an_admission_whose_opening_expired_untaken_is_not_shown_as_opening(
        app, as_role, appliance):
    """An ``open_lane`` command nobody took before it expired is never carried out: the
    verdict and the feed both stop showing the admission as waiting for its lane."""
    from datetime import timedelta

    from edge import commands
    from edge.engine import Engine, Scan, ScanKind
    from edge.holders import HolderVault
    from edge.web.gate import verdict_json
    from sync.timeutil import to_iso, utcnow

    venue, conn = appliance["venue"], appliance["conn"]
    b = as_role("gate")
    engine = Engine(conn, HolderVault(appliance["holder_key"]))
    d = engine.decide(Scan(ScanKind.QR, code_of(venue, "seated"), device_id="web:gate"), "N1")
    (lane_id,) = conn.execute("SELECT id FROM lanes WHERE code = 'N1'").fetchone()
    commands.request_open(conn, lane_id, "gate", {"entry_id": d.entry_id, "why": "scan"},
                          utcnow() - timedelta(minutes=1))
    with app.test_request_context():
        v = verdict_json(conn, d, "en")
    assert (v["colour"], v["admitted"], v["settled"]) == ("green", True, True)
    (update,) = b.get(f"/gate/feed.json?lane=N1&watch={d.entry_id}").json["updates"]
    assert (update["colour"], update["settled"]) == ("green", True)
    # the same command still to be taken: the admission waits for its lane on both
    conn.execute("UPDATE device_commands SET expires_at = ?",
                 (to_iso(utcnow() + timedelta(minutes=1)),))
    with app.test_request_context():
        assert verdict_json(conn, d, "en")["settled"] is False
    (update,) = b.get(f"/gate/feed.json?lane=N1&watch={d.entry_id}").json["updates"]
    assert update["settled"] is False
