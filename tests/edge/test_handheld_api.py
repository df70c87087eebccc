"""The handheld API over a real appliance database: pairing, tokens, idempotent scans, offline
batches, heartbeats, masking, and the OpenAPI file."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from edge import handhelds
from edge.allowlist import apply_changes
from sync import sample
from sync.changes import parse_change
from sync.timeutil import from_iso, to_iso, utcnow
from tests.edge.handheld_app import make_app

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "edge-openapi.json"


@pytest.fixture(scope="module")
def live_venue(hub_key):
    """The sample venue around the real time: the API decides at the appliance's clock."""
    return sample.build(hub_key, utcnow(), tickets=40)


@pytest.fixture
def app(conn, db_path, vault, holder_key, live_venue):
    apply_changes(conn, vault, [parse_change(c) for c in live_venue.changes])
    return make_app(db_path, holder_key)


@pytest.fixture
def client(app):
    return app.test_client()


def paired(client, conn, lanes=(), name="Handheld 1"):
    code = handhelds.create_pairing(conn, name, list(lanes), actor="admin").code
    r = client.post("/api/v1/pair", json={"code": code, "app_version": "test/1"})
    assert r.status_code == 201, r.get_json()
    return {"Authorization": f"Bearer {r.get_json()['token']}"}


def scan_body(live_venue, tid, csid, lane="N1", **extra):
    return {"client_scan_id": csid, "lane": lane, "kind": "qr",
            "data": live_venue.tickets[tid].code, **extra}


def entries(conn) -> int:
    return conn.execute("SELECT count(*) FROM entries").fetchone()[0]


# -- pairing -----------------------------------------------------------------------------


def test_a_pairing_code_works_once_and_keeps_only_hashes(client, conn):
    pairing = handhelds.create_pairing(conn, "Gate 1 PDA", ["N1", "N2"], actor="admin")
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", pairing.code)
    r = client.post("/api/v1/pair", json={"code": pairing.code.lower().replace("-", " ")})
    assert r.status_code == 201
    body = r.get_json()
    assert [lane["code"] for lane in body["lanes"]] == ["N1", "N2"]
    device = conn.execute("SELECT kind, name FROM devices WHERE id = ?",
                          (body["device_id"],)).fetchone()
    assert device == ("handheld", "Gate 1 PDA")
    dump = "\n".join(conn.iterdump())
    assert pairing.code.replace("-", "") not in dump and body["token"] not in dump
    again = client.post("/api/v1/pair", json={"code": pairing.code})
    assert again.status_code == 410 and again.get_json()["error"] == "code_used"
    actions = [r[0] for r in conn.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["handheld.pairing_create", "handheld.pair"]


def test_wrong_expired_and_malformed_codes_are_refused(client, conn):
    old = handhelds.create_pairing(conn, "Late", [], actor="admin",
                                   now=utcnow() - timedelta(minutes=11))
    r = client.post("/api/v1/pair", json={"code": old.code})
    assert r.status_code == 410 and r.get_json()["error"] == "code_expired"
    good = handhelds.create_pairing(conn, "Right", [], actor="admin").code
    wrong = ("2" if good[0] != "2" else "3") + good[1:]
    r = client.post("/api/v1/pair", json={"code": wrong})
    assert r.status_code == 400 and r.get_json()["error"] == "bad_code"
    for bad in ({"code": "0OIL-1111"}, {"code": 12345678}, {}, ["not", "an", "object"]):
        r = client.post("/api/v1/pair", json=bad)
        assert r.status_code == 400 and set(r.get_json()) == {"error", "message"}, bad
    assert conn.execute("SELECT count(*) FROM devices").fetchone()[0] == 0
    with pytest.raises(handhelds.HandheldError) as e:
        handhelds.create_pairing(conn, "Nowhere", ["Z9"], actor="admin")
    assert e.value.code == "unknown_lane"


def test_every_route_needs_a_live_token(app, client, conn, live_venue):
    headers = paired(client, conn)
    device_id = client.get("/api/v1/lanes", headers=headers).get_json()["device_id"]
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("handheld_api.")]
    guarded = [r for r in rules if r.endpoint != "handheld_api.pair"]
    assert {r.rule for r in guarded} == {"/api/v1/scan", "/api/v1/scans", "/api/v1/heartbeat",
                                         "/api/v1/lanes"}

    def call(rule, method, h):
        return client.open(rule.rule, method=method, headers=h, json=(
            None if method == "GET" else scan_body(live_venue, 1001, "c-0000001")))

    before = entries(conn)
    for rule in guarded:
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            for h in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"},
                      {"Authorization": headers["Authorization"].replace("Bearer", "Token")}):
                r = call(rule, method, h)
                assert r.status_code == 401, (rule.rule, method, h)
                assert r.get_json()["error"] == "unauthorized"
    assert handhelds.revoke(conn, device_id, actor="admin") == 1
    for rule in guarded:
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert call(rule, method, headers).status_code == 401, rule.rule
    assert entries(conn) == before


def test_unknown_routes_and_methods_answer_in_json(client):
    json_please = {"Accept": "application/json"}  # as every handheld client sends
    r = client.get("/api/v1/nothing-here", headers=json_please)
    assert r.status_code == 404 and r.get_json()["error"] == "not_found"
    r = client.get("/api/v1/scan", headers=json_please)
    assert r.status_code == 405 and r.get_json()["error"] == "method_not_allowed"
    r = client.post("/api/v1/scan", data="{not json", headers={
        **json_please, "Content-Type": "application/json"})
    assert r.status_code == 401 and r.get_json()["error"] == "unauthorized"


# -- scans -------------------------------------------------------------------------------


def test_the_same_client_scan_id_twice_is_one_entry(client, conn, live_venue):
    headers = paired(client, conn)
    body = scan_body(live_venue, 1002, "9b2f6c1e-0001")
    first = client.post("/api/v1/scan", json=body, headers=headers).get_json()
    second = client.post("/api/v1/scan", json=body, headers=headers).get_json()
    assert first["reason"] == "OK" and first["verdict"] == "admit" and first["colour"] == "green"
    assert first["duplicate"] is False and first["recorded"] is True
    assert second["reason"] == "OK" and second["duplicate"] is True
    assert second["entry_id"] == first["entry_id"]
    assert conn.execute("SELECT count(*) FROM entries WHERE ticket_id = 1002").fetchone()[0] == 1
    # a new id for the same ticket is a new scan: it is decided, and the ticket is used
    third = client.post("/api/v1/scan", json={**body, "client_scan_id": "9b2f6c1e-0002"},
                        headers=headers).get_json()
    assert third["reason"] == "ALREADY_ENTERED" and third["colour"] == "orange"
    assert third["detail"] == third["detail_words"] == "already inside"
    assert third["first_entry_at"] == first["at"]
    # the same id for a different scan is a client bug, said so, and decides nothing
    r = client.post("/api/v1/scan", json={**body, "data": live_venue.tickets[1003].code},
                    headers=headers)
    assert r.status_code == 409 and r.get_json()["error"] == "client_scan_id_reused"
    assert entries(conn) == 2


def test_two_handhelds_using_the_same_scan_id_each_get_their_own_verdict(client, conn,
                                                                        live_venue):
    one = paired(client, conn, name="PDA 1")
    two = paired(client, conn, name="PDA 2")
    first = client.post("/api/v1/scan", json=scan_body(live_venue, 1002, "shared-0001"),
                        headers=one).get_json()
    other = client.post("/api/v1/scan", json=scan_body(live_venue, 1006, "shared-0001",
                                                       lane="N2"), headers=two)
    assert other.status_code == 200, other.get_json()
    assert other.get_json()["duplicate"] is False and other.get_json()["reason"] == "OK"
    assert other.get_json()["entry_id"] != first["entry_id"]
    # the same ticket under the same id from the second handheld is its own scan, not a replay
    replay = client.post("/api/v1/scan", json=scan_body(live_venue, 1002, "shared-0002"),
                         headers=one).get_json()
    stolen = client.post("/api/v1/scan", json=scan_body(live_venue, 1002, "shared-0002"),
                         headers=two).get_json()
    assert replay["reason"] == "ALREADY_ENTERED" and stolen["duplicate"] is False
    assert stolen["entry_id"] != replay["entry_id"]
    t = to_iso(utcnow())
    batch = client.post("/api/v1/scans", headers=two, json={"scans": [
        scan_body(live_venue, 1006, "shared-0001", lane="N2", scanned_at=t)]})
    assert batch.status_code == 200
    (resent,) = batch.get_json()["results"]  # its own earlier scan, sent again
    assert resent["duplicate"] is True and resent["entry_id"] == other.get_json()["entry_id"]
    assert conn.execute("SELECT count(*) FROM handheld_scans WHERE client_scan_id = "
                        "'shared-0001'").fetchone() == (2,)
    assert entries(conn) == 4


def test_the_same_id_sent_at_once_from_many_threads_is_decided_once(app, conn, live_venue,
                                                                    db_path):
    headers = paired(app.test_client(), conn)
    body = scan_body(live_venue, 1006, "race-000001", lane="N2")
    barrier = threading.Barrier(6)
    answers = []

    def send():
        c = app.test_client()
        barrier.wait()
        answers.append(c.post("/api/v1/scan", json=body, headers=headers).get_json())

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 6
    assert {a["reason"] for a in answers} == {"OK"}
    assert {a["entry_id"] for a in answers} == {answers[0]["entry_id"]}
    assert sorted(a["duplicate"] for a in answers) == [False] + [True] * 5
    assert conn.execute("SELECT count(*) FROM entries WHERE ticket_id = 1006").fetchone()[0] == 1


def test_verdicts_speak_the_requested_language(client, conn, live_venue):
    headers = paired(client, conn)
    r = client.post("/api/v1/scan", json={"client_scan_id": "lang-000001", "lane": "N1",
                                          "kind": "manual", "data": "NOT-A-TICKET"},
                    headers={**headers, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    v = r.get_json()
    assert v["reason"] == "UNKNOWN" and v["words"] == "无法识别此票" and v["colour"] == "red"
    assert v["detail"] == "ticket numbers are not accepted at this gate"
    assert v["detail_words"] != v["detail"] and re.search(r"[\u4e00-\u9fff]", v["detail_words"])
    r = client.post("/api/v1/scan", json=scan_body(live_venue, 900005, "lang-000002"),
                    headers={**headers, "Accept-Language": "en-GB,zh;q=0.5"})
    assert r.get_json()["reason"] == "REVOKED"
    assert r.get_json()["words"] == "Ticket cancelled or refunded"


def test_a_handheld_scans_only_for_its_lanes(client, conn, live_venue):
    headers = paired(client, conn, lanes=["N1"])
    lanes = client.get("/api/v1/lanes", headers=headers).get_json()["lanes"]
    assert lanes == [{"code": "N1", "name": "N1", "direction": "in",
                      "gate": {"code": "G1", "name": "Gate 1 North"}}]
    r = client.post("/api/v1/scan", json=scan_body(live_venue, 1002, "lane-000001", lane="N2"),
                    headers=headers)
    assert r.status_code == 403 and r.get_json()["error"] == "lane_not_allowed"
    # a scan recorded before its lane was taken from the handheld is still answered when resent
    r = client.post("/api/v1/scan", json=scan_body(live_venue, 1002, "lane-000003"),
                    headers=headers)
    assert r.get_json()["reason"] == "OK"
    conn.execute("UPDATE devices SET config = json_set(config, '$.lanes', json('[\"N2\"]'))")
    r = client.post("/api/v1/scan", json=scan_body(live_venue, 1002, "lane-000003"),
                    headers=headers)
    assert r.get_json()["duplicate"] is True and r.get_json()["reason"] == "OK"
    r = client.post("/api/v1/scan", json=scan_body(live_venue, 1006, "lane-000004"),
                    headers=headers)
    assert r.status_code == 403
    everywhere = paired(client, conn, name="Roaming")
    r = client.post("/api/v1/scan", json=scan_body(live_venue, 1002, "lane-000002", lane="Q7"),
                    headers=everywhere)
    assert r.status_code == 404 and r.get_json()["error"] == "unknown_lane"
    assert entries(conn) == 1


@pytest.mark.parametrize("bad, word", [
    ({"lane": "N1", "data": "x"}, "client_scan_id"),
    ({"client_scan_id": "short", "lane": "N1", "data": "x"}, "client_scan_id"),
    ({"client_scan_id": "abcdefgh-1", "data": "x"}, "lane"),
    ({"client_scan_id": "abcdefgh-1", "lane": "N1", "kind": "id_card", "data": "x"}, "kind"),
    ({"client_scan_id": "abcdefgh-1", "lane": "N1", "data": 5}, "data"),
    ({"client_scan_id": "abcdefgh-1", "lane": "N1", "data": "x", "scanned_at": "yesterday"},
     "scanned_at"),
    ({"client_scan_id": "abcdefgh-1", "lane": "N1", "data": "x",
      "document": {"doc_type": "library_card", "number": "1"}}, "document"),
])
def test_a_malformed_scan_is_refused_and_says_why(client, conn, bad, word):
    headers = paired(client, conn)
    r = client.post("/api/v1/scan", json=bad, headers=headers)
    assert r.status_code == 400
    assert r.get_json()["error"] == "bad_scan" and word in r.get_json()["message"]
    assert entries(conn) == 0


# -- batches -----------------------------------------------------------------------------


def test_a_batch_is_decided_in_order_at_the_handhelds_corrected_time(client, conn, live_venue):
    headers = paired(client, conn)
    now = utcnow()
    skew = timedelta(minutes=7)  # the handheld's clock is 7 minutes slow
    hh = now - skew

    def at(minutes):
        return to_iso(hh - timedelta(minutes=minutes))

    scans = [scan_body(live_venue, 1002, "batch-00001", scanned_at=at(12)),
             scan_body(live_venue, 1010, "batch-00002", scanned_at=at(11)),
             scan_body(live_venue, 1002, "batch-00003", scanned_at=at(10)),
             scan_body(live_venue, 900005, "batch-00004", scanned_at=at(9))]
    r = client.post("/api/v1/scans", json={"sent_at": to_iso(hh), "scans": scans},
                    headers=headers)
    assert r.status_code == 200
    results = r.get_json()["results"]
    assert [x["client_scan_id"] for x in results] == [s["client_scan_id"] for s in scans]
    assert [x["reason"] for x in results] == ["OK", "OK", "ALREADY_ENTERED", "REVOKED"]
    for x, minutes in zip(results, (12, 11, 10, 9), strict=True):
        made = now - timedelta(minutes=minutes)
        assert abs(from_iso(x["at"]) - made) < timedelta(seconds=30), (x["at"], made)
    stored = conn.execute("SELECT scanned_at FROM handheld_scans WHERE client_scan_id = ?",
                          ("batch-00001",)).fetchone()[0]
    assert from_iso(stored) == from_iso(scans[0]["scanned_at"])
    # the same batch again (the answer was lost on the way): nothing is decided twice
    again = client.post("/api/v1/scans", json={"sent_at": to_iso(utcnow() - skew),
                                               "scans": scans}, headers=headers)
    assert [x["duplicate"] for x in again.get_json()["results"]] == [True] * 4
    assert [x["reason"] for x in again.get_json()["results"]] == [x["reason"] for x in results]
    assert entries(conn) == 4


def test_the_configured_maximum_age_refuses_old_offline_scans_on_arrival(
        conn, db_path, holder_key, vault, live_venue, tmp_path):
    from edge import config as config_mod
    from edge.web.app import create_app

    apply_changes(conn, vault, [parse_change(c) for c in live_venue.changes])
    cfg = tmp_path / "edge.toml"
    config_mod.write_new(cfg, {"database": str(db_path), "holder_key": holder_key,
                               "handheld_offline_max_age_min": 5})
    client = create_app({"EDGE_CONFIG": str(cfg), "TESTING": True}).test_client()
    headers = paired(client, conn)
    now = utcnow()
    r = client.post("/api/v1/scans", headers={**headers, "Accept-Language": "zh-CN"}, json={
        "sent_at": to_iso(now), "scans": [
            scan_body(live_venue, 1002, "aged-000001", scanned_at=to_iso(now - timedelta(
                minutes=10))),
            scan_body(live_venue, 1006, "aged-000002", lane="N2",
                      scanned_at=to_iso(now - timedelta(minutes=1)))]})
    old, fresh = r.get_json()["results"]
    assert old["reason"] == "EXPIRED" and old["colour"] != "green" and old["recorded"]
    assert old["detail"] == "offline scan arrived more than 5 minutes after it was made"
    assert old["detail_words"] == "离线扫描在扫描后超过 5 分钟才送达"
    assert fresh["reason"] == "OK"
    assert conn.execute("SELECT reason, admitted FROM entries WHERE id = ?",
                        (old["entry_id"],)).fetchone() == ("EXPIRED", 0)


def test_a_scan_from_the_future_is_decided_at_the_appliances_time(client, conn, live_venue):
    headers = paired(client, conn)
    ahead = to_iso(utcnow() + timedelta(hours=5))
    r = client.post("/api/v1/scans", headers=headers, json={
        "scans": [scan_body(live_venue, 1014, "future-0001", scanned_at=ahead)]})
    (x,) = r.get_json()["results"]
    assert x["reason"] == "OK" and from_iso(x["at"]) <= utcnow()


def test_an_oversized_batch_is_refused_whole(client, conn, live_venue):
    headers = paired(client, conn)
    scans = [scan_body(live_venue, 1002, f"over-{i:06d}", scanned_at=to_iso(utcnow()))
             for i in range(handhelds.MAX_BATCH + 1)]
    r = client.post("/api/v1/scans", json={"scans": scans}, headers=headers)
    assert r.status_code == 413 and r.get_json()["error"] == "batch_too_large"
    assert str(handhelds.MAX_BATCH) in r.get_json()["message"]
    assert entries(conn) == 0


def test_malformed_items_refuse_the_batch_and_lose_nothing(client, conn, live_venue):
    headers = paired(client, conn, lanes=["N1", "N2"])
    t = to_iso(utcnow())
    good = [scan_body(live_venue, 1002, "mixed-00001", scanned_at=t),
            scan_body(live_venue, 1006, "mixed-00003", scanned_at=t, lane="N2"),
            scan_body(live_venue, 1010, "mixed-00005", scanned_at=t)]
    bad = [{"client_scan_id": "mixed-00002", "lane": "N1", "data": "x"},  # no scanned_at
           "not an object",
           scan_body(live_venue, 1014, "mixed-00006", scanned_at=t, lane="S1")]
    batch = [good[0], bad[0], good[1], bad[1], good[2], bad[2]]
    r = client.post("/api/v1/scans", json={"sent_at": t, "scans": batch}, headers=headers)
    assert r.status_code == 400
    body = r.get_json()
    assert body["error"] == "bad_batch" and "nothing in this batch was decided" in body["message"]
    assert [(i["index"], i["client_scan_id"], i["error"]) for i in body["items"]] == [
        (1, "mixed-00002", "bad_scan"), (3, None, "bad_scan"),
        (5, "mixed-00006", "lane_not_allowed")]
    assert "scanned_at" in body["items"][0]["message"]
    assert entries(conn) == 0
    r = client.post("/api/v1/scans", json={"sent_at": t, "scans": good}, headers=headers)
    assert [x["reason"] for x in r.get_json()["results"]] == ["OK"] * 3
    assert entries(conn) == 3
    for not_a_batch in ({}, {"scans": "all"}, {"scans": [], "sent_at": "noon"}):
        r = client.post("/api/v1/scans", json=not_a_batch, headers=headers)
        assert r.status_code == 400 and r.get_json()["error"] == "bad_batch", not_a_batch


def test_a_batch_reusing_an_id_for_another_scan_is_refused(client, conn, live_venue):
    headers = paired(client, conn)
    t = to_iso(utcnow())
    client.post("/api/v1/scan", json=scan_body(live_venue, 1002, "reuse-00001"), headers=headers)
    r = client.post("/api/v1/scans", headers=headers, json={"scans": [
        scan_body(live_venue, 1006, "reuse-00002", scanned_at=t, lane="N2"),
        scan_body(live_venue, 1010, "reuse-00001", scanned_at=t),
        scan_body(live_venue, 1014, "reuse-00003", scanned_at=t),
        scan_body(live_venue, 1018, "reuse-00003", scanned_at=t)]})
    assert r.status_code == 400
    assert [(i["index"], i["error"]) for i in r.get_json()["items"]] == [
        (1, "client_scan_id_reused"), (3, "client_scan_id_reused")]
    assert entries(conn) == 1


# -- heartbeat, masking, the spec --------------------------------------------------------


def test_a_heartbeat_reports_skew_and_device_health(client, conn):
    headers = paired(client, conn)
    ahead = utcnow() + timedelta(seconds=90)
    r = client.post("/api/v1/heartbeat", headers=headers, json={
        "battery": 64, "charging": False, "app_version": "pda/2.1", "queue_depth": 3,
        "clock": to_iso(ahead)})
    assert r.status_code == 200
    skew = r.get_json()["clock_skew_ms"]
    assert 85_000 < skew <= 90_000
    row = conn.execute("SELECT battery, charging, app_version, queue_depth, clock_skew_ms "
                       "FROM handheld_status").fetchone()
    assert row == (64, 0, "pda/2.1", 3, skew)
    state, detail = conn.execute("SELECT state, state_detail FROM devices").fetchone()
    assert state == "up" and "battery 64%" in detail and "3 queued" in detail
    for bad in ({"battery": 101}, {"battery": True}, {"queue_depth": -1}, {"clock": "now"},
                {"app_version": "x" * 65}, {"charging": "yes"}):
        r = client.post("/api/v1/heartbeat", headers=headers, json=bad)
        assert r.status_code == 400 and r.get_json()["error"] == "bad_heartbeat", bad


def test_personal_data_never_leaves_unmasked(client, conn, live_venue):
    headers = paired(client, conn)
    t = to_iso(utcnow())
    texts = []
    for i, ticket in enumerate(t for _, t in sorted(live_venue.tickets.items())):
        for lane in ("N1", "S1"):
            body = {"client_scan_id": f"pii-{lane}-{i:05d}", "lane": lane, "kind": "qr",
                    "data": ticket.code}
            if ticket.holder_id:
                _, doc_type, number = live_venue.holders[ticket.holder_id]
                body["document"] = {"doc_type": doc_type, "number": number}
            texts.append(client.post("/api/v1/scan", json=body, headers=headers).get_data(True))
        texts.append(client.post("/api/v1/scans", headers=headers, json={"scans": [
            {**body, "client_scan_id": f"pii-b-{i:05d}", "scanned_at": t}]}).get_data(True))
    texts.append(client.get("/api/v1/lanes", headers=headers).get_data(True))
    everything = "\n".join(texts)
    decoded = "\n".join(json.dumps(json.loads(x), ensure_ascii=False) for x in texts)
    masked = 0
    for name, _, number in live_venue.holders.values():
        assert number not in everything and number not in decoded
        assert name not in decoded
        masked += number[:4] + "*" * (len(number) - 8) + number[-4:] in decoded
    assert masked >= len(live_venue.holders) // 2
    assert '"holder": {"document"' in decoded or '"holder": {"name"' in decoded
    dump = "\n".join(conn.iterdump())
    for name, _, number in live_venue.holders.values():
        assert number not in dump and name not in dump


def test_the_openapi_file_matches_the_routes(app):
    spec = json.loads(OPENAPI.read_text())
    assert spec["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        served |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            secured = op.get("security", spec.get("security"))
            assert (secured == []) == (path == "/api/v1/pair"), (method, path)
            assert any(code.startswith("4") for code in op["responses"]), (method, path)


def test_the_page_is_served_without_a_session_and_nothing_else_is(client):
    r = client.get("/handheld/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert b'src="app.js"' in r.data and "script-src 'self'" in r.headers[
        "Content-Security-Policy"]
    assert client.get("/handheld/app.js").mimetype == "text/javascript"
    assert client.get("/handheld/app.css").mimetype == "text/css"
    for name in ("handheld.py", "..%2Fapp.py", "index.htm"):
        assert client.get(f"/handheld/{name}").status_code == 404, name


def test_api_answers_open_no_staff_session_and_the_pages_still_do(client, conn, live_venue):
    headers = paired(client, conn)
    r = client.post("/api/v1/scan", json=scan_body(live_venue, 1002, "9b2f6c1e-0101"),
                    headers=headers)
    assert r.status_code == 200 and r.get_json()["reason"] == "OK"
    assert "Set-Cookie" not in r.headers
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    # a page of the appliance still keeps its session: its form's CSRF token lives there
    r = client.get("/first-run")
    assert r.status_code == 200
    assert "wicket_edge=" in r.headers.get("Set-Cookie", "")


# -- ticket numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["qr", "rfid"])
def test_a_ticket_number_read_by_a_handhelds_camera_or_scanner_is_refused(client, conn,
                                                                          live_venue, kind):
    """Even at a gate that admits typed numbers: what the camera or scanner read is judged
    as a code or a card, and a home-made QR saying a ticket number is neither."""
    conn.execute("UPDATE gates SET manual_entry = 1")
    headers = paired(client, conn)
    number = live_venue.tickets[1002].number
    for i, data in enumerate((number, f"{number}\n", number.lower())):
        r = client.post("/api/v1/scan", json={"client_scan_id": f"num-{kind}-{i:04d}",
                                              "lane": "N1", "kind": kind, "data": data},
                        headers=headers)
        assert r.status_code == 200 and r.get_json()["reason"] == "UNKNOWN", data
        assert r.get_json()["open_lane"] is False and r.get_json()["ticket"] is None
    r = client.post("/api/v1/scans", json={"sent_at": to_iso(utcnow()), "scans": [
        {"client_scan_id": f"num-{kind}-off1", "lane": "N1", "kind": kind, "data": number,
         "scanned_at": to_iso(utcnow())}]}, headers=headers)
    assert r.status_code == 200 and r.get_json()["results"][0]["reason"] == "UNKNOWN"
    assert conn.execute("SELECT count(*) FROM entries WHERE admitted = 1").fetchone() == (0,)


def test_a_number_typed_on_a_handheld_admits_only_where_the_gate_allows_it(client, conn,
                                                                            live_venue):
    headers = paired(client, conn, name="North PDA 3")
    number = live_venue.tickets[1002].number

    def typed(csid, lane="N1"):
        return client.post("/api/v1/scan", json={"client_scan_id": csid, "lane": lane,
                                                 "kind": "manual", "data": number},
                           headers=headers).get_json()

    v = typed("typed-00001")
    assert v["reason"] == "UNKNOWN" and v["detail"] == "ticket numbers are not accepted at this gate"
    conn.execute("UPDATE gates SET manual_entry = 1 WHERE code = 'G1'")
    v = typed("typed-00002")
    assert v["reason"] == "OK" and v["open_lane"] is True and v["ticket"]["number"] == number
    row = conn.execute("SELECT scan_kind, staff, device_id FROM entries WHERE id = ?",
                       (v["entry_id"],)).fetchone()
    assert row[:2] == ("manual", "North PDA 3") and row[2].startswith("hh-")
    assert typed("typed-00003", lane="C1")["detail"] == \
        "ticket numbers are not accepted at this gate"
