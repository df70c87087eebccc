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
    # a typed ticket number is a manual scan
    other = venue.tickets[venue.named["other_holder"]]
    r = b.post_json("/gate/scan.json", {"lane": "N1", "code": other.number, "kind": "manual"})
    assert r.json["reason"] == "OK"
    kinds = [k for (k,) in appliance["conn"].execute("SELECT scan_kind FROM entries ORDER BY seq")]
    assert kinds[-1] == "manual" and kinds[0] == "qr"
    assert len(kinds) == 7
    # bad requests get clear errors and record nothing
    assert b.post_json("/gate/scan.json", {"lane": "ZZ", "code": "x"}).status_code == 400
    assert b.post_json("/gate/scan.json", {"lane": "N1", "code": "  "}).status_code == 400
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
    assert row[0] == 1 and row[1] == "OK" and row[4] == "manual"
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
    from edge.web.details import FIXED, PATTERNS

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
    seen["typed"] = r["detail"]
    assert seen["repeat"] == "已在场内"
    assert seen["wrong_gate"] == "South Stand 区不能从本入口进入"
    assert seen["realname"] == "实名票：请同时读取持票人身份证"
    assert seen["typed"] == "既不是票码，也不是已知票号"
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
    assert len(FIXED) >= 30 and len(PATTERNS) >= 10
