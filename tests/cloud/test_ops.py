"""Central ops' data layer on both databases, fed through the real entries push (test client):
attendance, inside-now, passes, breakdowns by venue, zone and gate, appliances and their
devices, conflicts and their review, alerts raised and cleared."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.app import create_app
from cloud.catalog.events import create_event
from cloud.catalog.venues import add_gate, add_lane, add_zone, create_venue
from cloud.core.audit import audit_log
from cloud.core.db import init_db
from cloud.fleet import appliances
from cloud.fleet.keys import activate_key, create_key
from cloud.fleet.tables import entries
from cloud.inventory.sessions import create_session
from cloud.ops import alerts
from cloud.ops import attendance as ops
from cloud.ops import conflicts as ops_conflicts
from cloud.ops import devices as ops_devices
from cloud.ops.tables import entry_minutes
from cloud.sales.tickets import issue_ticket, revoke_ticket
from sync import codes
from sync.ids import uuid7
from sync.numbers import is_number
from sync.timeutil import to_iso, utcnow


@dataclass
class Hub:
    client: object
    engine: sa.Engine
    session: int
    other_session: int
    venue: int
    other_venue: int
    gates: dict[str, int]
    zones: dict[str, int]
    tickets_a: list[int]
    tickets_b: list[int]
    day_pass: int
    boxes: dict[str, dict]


@pytest.fixture
def hub(hub_url):
    init_db(hub_url)
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True})
    engine = app.extensions["db"]
    now = utcnow()
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        other = create_venue(conn, "AQC", "Aquatics Centre")
        zones = {"A": add_zone(conn, venue, "A", "North Stand"),
                 "B": add_zone(conn, venue, "B", "South Stand")}
        add_zone(conn, other, "P", "Pool")
        gates = {"N": add_gate(conn, venue, "N", "North Gate", ["A"]),
                 "S": add_gate(conn, venue, "S", "South Gate", ["B"]),
                 "X": add_gate(conn, venue, "X", "Exit", ["A", "B"]),
                 "P": add_gate(conn, other, "P", "Pool Gate", ["P"])}
        add_lane(conn, venue, "N", "N1")
        add_lane(conn, venue, "N", "N2")
        add_lane(conn, venue, "S", "S1")
        add_lane(conn, venue, "X", "X1", direction="out")
        add_lane(conn, other, "P", "P1")
        event = create_event(conn, "GAMES", "The Games")
        start = now + timedelta(minutes=30)
        session = create_session(conn, event, venue, "Opening", start, start + timedelta(hours=3),
                                 gates_open_at=now - timedelta(hours=1))
        other_session = create_session(conn, event, other, "Heats", start,
                                       start + timedelta(hours=3),
                                       gates_open_at=now - timedelta(hours=1))
        tickets_a = [issue_ticket(conn, session_id=session, zone_id=zones["A"]).id
                     for _ in range(6)]
        tickets_b = [issue_ticket(conn, session_id=session, zone_id=zones["B"]).id
                     for _ in range(4)]
        issue_ticket(conn, session_id=other_session)
        refunded = issue_ticket(conn, session_id=session, zone_id=zones["A"]).id
        revoke_ticket(conn, refunded)  # not sold any more
        day_pass = issue_ticket(conn, kind=codes.Kind.SESSIONS,
                                scope=(session, other_session)).id
        regs = {"box1": appliances.register(conn, venue, "Gate box 1"),
                "box2": appliances.register(conn, venue, "Gate box 2"),
                "pool": appliances.register(conn, other, "Pool box")}
    client = app.test_client()
    boxes = {}
    for name, reg in regs.items():
        body = client.post("/api/sync/v1/enroll", json={"token": reg.token}).get_json()
        boxes[name] = {"id": reg.id, "auth": {"Authorization": f"Appliance {body['credential']}"}}
    yield Hub(client, engine, session, other_session, venue, other, gates, zones, tickets_a,
              tickets_b, day_pass, boxes)
    engine.dispose()


def entry(session, ticket, lane="N1", direction="in", admitted=True, reason="OK", at=None,
          **over):
    return {"id": str(uuid7()), "seq": 1, "at": to_iso(at or utcnow()), "lane": lane,
            "direction": direction, "ticket_id": ticket, "session_id": session,
            "admitted": admitted, "reason": reason, "cursor": 10, **over}


def push(hub, box, *batch):
    r = hub.client.post("/api/sync/v1/entries", json={"entries": list(batch)},
                        headers=hub.boxes[box]["auth"])
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def heartbeat(hub, box, state, clock=None):
    r = hub.client.post("/api/sync/v1/heartbeat", headers=hub.boxes[box]["auth"],
                        json={"state": state, **({"clock": to_iso(clock)} if clock else {})})
    assert r.status_code == 200


def numbers(hub, *session_ids):
    with hub.engine.connect() as conn:
        return ops.attendance(conn, list(session_ids or [hub.session]))


def test_sold_entered_inside_and_the_breakdowns(hub):
    s = hub.session
    now = utcnow()
    entry = functools.partial(globals()["entry"], at=now)  # one minute, whatever the clock does
    a, b = hub.tickets_a, hub.tickets_b
    push(hub, "box1",
         entry(s, a[0]), entry(s, a[1], lane="N2"), entry(s, a[2]),
         entry(s, b[0], lane="S1"), entry(s, b[1], lane="S1"),
         entry(s, a[3], admitted=False, reason="WRONG_GATE", lane="S1"),
         entry(None, None, admitted=False, reason="UNKNOWN"))
    # two leave by the exit, one of them comes back in (re-entry)
    push(hub, "box2", entry(s, a[0], lane="X1", direction="out"),
         entry(s, b[0], lane="X1", direction="out"), entry(s, a[0], lane="N2"))
    with hub.engine.connect() as conn:
        n = ops.attendance(conn, [s], now=now)
    t = n["totals"]
    assert (t["sold"], t["passes"]) == (10, 1)  # the refunded ticket is not sold; one pass
    assert (t["entered"], t["entries"], t["exits"], t["inside"]) == (5, 6, 2, 4)
    assert t["refused"] == 2  # the UNKNOWN scan has no session: it counts at its venue
    assert t["rate"] == round(6 / 5, 1)
    [venue] = n["by_venue"]
    assert (venue["venue"], venue["inside"]) == ("Olympic Sports Centre", 4)
    zones = {z["zone"]: z for z in n["by_zone"]}
    assert (zones["North Stand"]["entered"], zones["North Stand"]["inside"]) == (3, 3)
    assert (zones["South Stand"]["entered"], zones["South Stand"]["inside"]) == (2, 1)
    by_gate = {g["gate"]: g for g in n["by_gate"]}
    assert by_gate["North Gate"]["entries"] == 4  # N1 and N2 are both the North Gate
    assert by_gate["North Gate"]["refused"] == 1
    assert (by_gate["South Gate"]["entries"], by_gate["South Gate"]["refused"]) == (2, 1)
    assert (by_gate["Exit"]["exits"], by_gate["Exit"]["entries"]) == (2, 0)
    assert sum(p["entries"] for p in n["rate"]) == 6 and len(n["rate"]) == ops.CHART_MINUTES
    assert n["rate"][-1]["entries"] >= 1


def test_a_resent_batch_and_a_duplicate_count_nothing_twice(hub):
    s = hub.session
    batch = [entry(s, hub.tickets_a[0]), entry(s, hub.tickets_a[1])]
    push(hub, "box1", *batch)
    again = push(hub, "box1", *batch, batch[0])
    assert again["stored"] == []
    t = numbers(hub)["totals"]
    assert (t["entered"], t["entries"]) == (2, 2)
    with hub.engine.connect() as conn:
        assert sum(conn.execute(sa.select(entry_minutes.c.admitted_in)).scalars()) == 2


def test_a_pass_counts_once_per_entry_in_each_session_it_enters(hub):
    p = hub.day_pass
    push(hub, "box1", entry(hub.session, p))
    push(hub, "pool", entry(hub.other_session, p, lane="P1"),
         entry(None, None, lane="P1", admitted=False, reason="FORGED"))
    # admitted twice at the same session by two boxes: two entries, one ticket entered
    push(hub, "box2", entry(hub.session, p, lane="S1"))
    here, there = numbers(hub)["totals"], numbers(hub, hub.other_session)["totals"]
    assert (here["entered"], here["entries"]) == (1, 2)
    assert (there["entered"], there["entries"], there["refused"]) == (1, 1, 1)
    assert here["refused"] == 0
    both = numbers(hub, hub.session, hub.other_session)
    assert both["totals"]["entered"] == 2 and both["totals"]["passes"] == 2
    assert [v["venue"] for v in both["by_venue"]] == ["Olympic Sports Centre",
                                                      "Aquatics Centre"]
    # the pass has no zone: at the Pool Gate (one zone) it counts in the Pool zone
    assert {z["zone"] for z in numbers(hub, hub.other_session)["by_zone"]} == {"Pool"}


def test_entries_of_an_unknown_lane_are_shown_by_their_lane_code(hub):
    push(hub, "box1", entry(hub.session, hub.tickets_a[0], lane="Z9"))
    [g] = numbers(hub)["by_gate"]
    assert (g["gate"], g["lane"], g["entries"]) == (None, "Z9", 1)


@pytest.mark.empty_hub
def test_entries_stored_before_the_ops_tables_are_counted_by_the_migration(hub_url,
                                                                           monkeypatch):
    """An upgrade from the revision before: the entries already stored appear on the dashboard."""
    from alembic import command
    from cryptography.hazmat.primitives import serialization

    from cloud.core import changes as changes_mod
    from cloud.core.db import alembic_config, make_engine
    from cloud.sales import tickets as tickets_mod
    from sync.keys import generate_signing_key

    cfg = alembic_config(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010")
    # the signing key as revision 0010 kept it (clear PEM; migration 0016 wraps it later)
    key = generate_signing_key(1)
    monkeypatch.setattr(tickets_mod, "active_key", lambda conn: key)
    # and numbers from the counter rows, as before migration 0021's sequences (PostgreSQL)
    monkeypatch.setattr(changes_mod, "SEQUENCES", {})
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO signing_keys (key_id, public_key, private_pem, state, created_at) "
            "VALUES (1, :public, :pem, 'active', CURRENT_TIMESTAMP)"),
            {"public": key.public_key_b64(), "pem": key.private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode("ascii")})
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        zone = add_zone(conn, venue, "A", "North Stand")
        event = create_event(conn, "GAMES", "The Games")
        start = utcnow()
        session = create_session(conn, event, venue, "Opening", start, start + timedelta(hours=2))
        t = [issue_ticket(conn, session_id=session, zone_id=zone).id for _ in range(3)]
        box = appliances.register(conn, venue, "Gate box 1").id
        rows = [(t[0], "in", True), (t[0], "out", True), (t[0], "in", True), (t[1], "in", True),
                (t[2], "in", False)]
        conn.execute(sa.insert(entries), [
            {"id": str(uuid7()), "appliance_id": box, "venue_id": venue, "seq": i, "at": start,
             "lane": "N1", "direction": d, "ticket_id": tid, "session_id": session,
             "admitted": ok, "reason": "OK" if ok else "BLOCKED", "cursor": 1,
             "received_at": start} for i, (tid, d, ok) in enumerate(rows)])
    engine.dispose()
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.connect() as conn:
        n = ops.attendance(conn, [session])["totals"]
    engine.dispose()
    assert (n["entered"], n["entries"], n["exits"], n["inside"], n["refused"]) == (2, 3, 1, 2, 1)
    assert n["sold"] == 3  # counted by the migration, then kept by the triggers


def test_appliances_report_devices_lag_queue_skew_and_version(hub):
    s = hub.session
    push(hub, "box1", entry(s, hub.tickets_a[0]))
    with hub.engine.connect() as conn:
        head = conn.execute(sa.text("SELECT max(seq) FROM change_log WHERE venue_id = :v"),
                            {"v": hub.venue}).scalar()
    oldest = utcnow() - timedelta(seconds=40)
    heartbeat(hub, "box1", {
        "software_version": "0.3.1", "cursors": {"allowlist": head - 2},
        "queue": {"unsent": 7, "oldest_unsent_at": to_iso(oldest), "refused": 2},
        "devices": [{"id": "cam-n1", "kind": "qr_camera", "lane": "N1", "state": "up",
                     "last_scan_at": to_iso(utcnow()), "errors": 0},
                    {"id": "ts-s1", "kind": "turnstile", "lane": "S1", "state": "down",
                     "error": "no answer on /dev/ttyUSB0", "errors": 3},
                    # as the edge's agent reports today: no lane, the state's detail and time
                    {"id": "rfid-1", "kind": "rfid", "state": "degraded",
                     "detail": "garbled frames", "at": to_iso(utcnow())}]},
        clock=utcnow() + timedelta(seconds=45))
    heartbeat(hub, "box2", {"software_version": "0.3.1", "cursors": {"allowlist": head},
                            "queue": {"unsent": 0}})
    with hub.engine.begin() as conn:  # the pool box went quiet ten minutes ago
        conn.execute(sa.update(appliances.appliances).where(
            appliances.appliances.c.id == hub.boxes["pool"]["id"])
            .values(last_seen_at=utcnow() - timedelta(minutes=10)))
    with hub.engine.connect() as conn:
        status = {a["name"]: a for a in ops_devices.appliance_status(conn)}
        gates = {g["venue"]: g for g in ops_devices.gates_online(conn, list(status.values()))}
    one, two, pool = status["Gate box 1"], status["Gate box 2"], status["Pool box"]
    assert one["online"] and two["online"] and not pool["online"]
    assert pool["heartbeat_age_s"] >= 600
    assert (one["version"], one["queued"], one["refused"]) == ("0.3.1", 7, 2)
    assert 40 <= one["lag_up_s"] < 60 and one["lag_down_changes"] == 2
    assert one["lag_down_s"] >= 0 and two["lag_down_changes"] == 0 and two["lag_down_s"] == 0
    assert 44 <= one["clock_skew_s"] <= 46
    devices = {d["id"]: d for d in one["devices"]}
    assert (devices["cam-n1"]["gate"], devices["cam-n1"]["state"]) == ("North Gate", "up")
    assert (devices["ts-s1"]["errors"], devices["ts-s1"]["error"]) == (
        3, "no answer on /dev/ttyUSB0")
    rfid = devices["rfid-1"]
    assert (rfid["state"], rfid["error"], rfid["gate"]) == ("degraded", "garbled frames", None)
    assert rfid["since"] is not None and rfid["last_scan_at"] is None
    assert pool["devices"] == [] and pool["version"] is None
    osc = gates["Olympic Sports Centre"]
    assert (osc["gates"], osc["online"], osc["appliances"], osc["appliances_online"]) == (
        3, 1, 2, 2)
    assert (gates["Aquatics Centre"]["online"], gates["Aquatics Centre"]["appliances_online"]
            ) == (0, 0)
    # a lane that scanned a moment ago puts its gate online, whatever its devices say
    push(hub, "box2", entry(s, hub.tickets_b[0], lane="S1"))
    with hub.engine.connect() as conn:
        gates = {g["venue"]: g for g in ops_devices.gates_online(conn, ops_devices.appliance_status(conn))}
    assert gates["Olympic Sports Centre"]["online"] == 2


def test_a_malformed_report_reads_as_unknown(hub):
    bad = {"software_version": 3, "cursors": "x", "queue": {"unsent": "7"},
           "devices": [17, {"kind": "no id"}, {"id": "d1", "errors": "many"}]}
    # the sync API refuses it at the door, naming the field ...
    r = hub.client.post("/api/sync/v1/heartbeat", headers=hub.boxes["box1"]["auth"],
                        json={"state": bad})
    assert (r.status_code, r.get_json()["field"]) == (400, "/state/cursors")
    # ... and a report kept before the schema existed still reads as unknown, not a 500
    with hub.engine.begin() as conn:
        conn.execute(sa.update(appliances.appliances).where(
            appliances.appliances.c.id == hub.boxes["box1"]["id"]).values(
            reported=bad, last_seen_at=utcnow()))
    with hub.engine.connect() as conn:
        one = next(a for a in ops_devices.appliance_status(conn) if a["name"] == "Gate box 1")
    assert (one["version"], one["queued"], one["lag_down_s"], one["lag_up_s"]) == (
        "3", None, None, None)
    assert [(d["id"], d["errors"], d["state"]) for d in one["devices"]] == [("d1", 0, "unknown")]


def test_conflicts_with_their_entries_and_a_review_that_is_audited(hub):
    s, t = hub.session, hub.tickets_a[0]
    first = entry(s, t)
    push(hub, "box1", first)
    second = entry(s, t, lane="S1", kind="manual", staff="alice")
    assert push(hub, "box2", second)["conflict"] == [second["id"]]
    with hub.engine.connect() as conn:
        [c] = ops_conflicts.conflict_list(conn)
        assert ops_conflicts.unreviewed_conflicts(conn) == 1
    assert c["kind"] == "double_admission" and is_number(c["ticket"]["number"])
    assert [(e["by_number"], e["staff"]) for e in c["entries"]] == [(False, None),
                                                                      (True, "alice")]
    assert [e["id"] for e in c["entries"]] == [first["id"], second["id"]]
    assert [e["appliance"] for e in c["entries"]] == ["Gate box 1", "Gate box 2"]
    with pytest.raises(ops_conflicts.OpsError, match="note"):
        with hub.engine.begin() as conn:
            ops_conflicts.review_conflict(conn, c["id"], "  ", actor="staff:7")
    with pytest.raises(ops_conflicts.OpsError, match="no conflict"):
        with hub.engine.begin() as conn:
            ops_conflicts.review_conflict(conn, 999, "checked", actor="staff:7")
    with hub.engine.begin() as conn:
        ops_conflicts.review_conflict(conn, c["id"], "same person, wristband swap", actor="staff:7")
    with hub.engine.connect() as conn:
        [c] = ops_conflicts.conflict_list(conn, reviewed=True)
        assert ops_conflicts.conflict_list(conn, reviewed=False) == []
        assert ops_conflicts.unreviewed_conflicts(conn) == 0
        audit = conn.execute(sa.select(audit_log).where(
            audit_log.c.action == "conflict.review")).one()
    assert (c["reviewed_by"], c["note"]) == ("staff:7", "same person, wristband swap")
    assert audit.actor == "staff:7" and audit.after["note"] == "same person, wristband swap"
    assert audit.before["reviewed_at"] is None


def evaluate(hub, now=None):
    with hub.engine.begin() as conn:
        return alerts.evaluate(conn, now=now, min_interval=timedelta(0))


def open_kinds(hub):
    with hub.engine.connect() as conn:
        return sorted((a["kind"], a["subject"]) for a in alerts.open_alerts(conn))


def audit_actions(hub):
    with hub.engine.connect() as conn:
        return [r.action for r in conn.execute(
            sa.select(audit_log.c.action).where(audit_log.c.action.like("alert%"))
            .order_by(audit_log.c.id))]


def test_offline_skew_and_lag_alerts_are_raised_and_cleared(hub):
    for box in hub.boxes:
        heartbeat(hub, box, {"queue": {"unsent": 0}})
    assert evaluate(hub).raised == [] and open_kinds(hub) == []
    pool = hub.boxes["pool"]["id"]
    with hub.engine.begin() as conn:
        conn.execute(sa.update(appliances.appliances).where(appliances.appliances.c.id == pool)
                     .values(last_seen_at=utcnow() - timedelta(minutes=6)))
    heartbeat(hub, "box1", {"queue": {"unsent": 3, "oldest_unsent_at":
                                       to_iso(utcnow() - timedelta(minutes=10))}},
              clock=utcnow() - timedelta(seconds=90))
    ev = evaluate(hub)
    assert sorted(a["kind"] for a in ev.raised) == ["appliance_offline", "clock_skew",
                                                    "sync_lag"]
    assert open_kinds(hub) == [("appliance_offline", f"appliance:{pool}"),
                               ("clock_skew", f"appliance:{hub.boxes['box1']['id']}"),
                               ("sync_lag", f"appliance:{hub.boxes['box1']['id']}")]
    assert evaluate(hub).raised == []  # still true: nothing raised twice
    # the pool box comes back, box 1 catches up and fixes its clock
    heartbeat(hub, "pool", {})
    heartbeat(hub, "box1", {"queue": {"unsent": 0}}, clock=utcnow())
    ev = evaluate(hub)
    assert len(ev.cleared) == 3 and open_kinds(hub) == []
    assert audit_actions(hub) == ["alert.raise"] * 3 + ["alert.clear"] * 3
    with hub.engine.connect() as conn:
        assert len(alerts.recent_alerts(conn)) == 3


def test_thresholds_set_on_the_rules_decide_and_are_audited(hub):
    heartbeat(hub, "box1", {}, clock=utcnow() + timedelta(seconds=20))
    assert evaluate(hub).raised == []  # 20 s is within the default 30 s
    with hub.engine.begin() as conn:
        rule = alerts.set_rule(conn, "clock_skew", 10, 5, True, actor="staff:3")
    assert (rule.threshold, rule.updated_by) == (10.0, "staff:3")
    assert [a["kind"] for a in evaluate(hub).raised] == ["clock_skew"]
    with hub.engine.begin() as conn:  # switched off: the open alert clears
        alerts.set_rule(conn, "clock_skew", 10, 5, False, actor="staff:3")
    assert [a["why"] for a in evaluate(hub).cleared] == ["rule switched off"]
    for bad in (("nope", 1, 5), ("refused_ratio", 150, 5), ("sync_lag", -1, 5),
                ("sync_lag", 10, 0), ("sync_lag", "x", 5)):
        with pytest.raises(alerts.AlertError):
            with hub.engine.begin() as conn:
                alerts.set_rule(conn, *bad, True, actor="staff:3")
    with hub.engine.connect() as conn:
        audit = conn.execute(sa.select(audit_log).where(
            audit_log.c.action == "alert_rule.update").order_by(audit_log.c.id)).all()
    assert [(a.before["threshold"], a.after["threshold"]) for a in audit] == [(30.0, 10.0),
                                                                              (10.0, 10.0)]
    assert audit[1].after["enabled"] is False


def test_refused_ratio_per_gate(hub):
    s = hub.session
    ok = [entry(s, t, lane="N1") for t in hub.tickets_a]
    bad = [entry(s, None, lane="S1", admitted=False, reason="FORGED") for _ in range(8)]
    push(hub, "box1", *ok, *bad, entry(s, hub.tickets_b[0], lane="S1"),
         entry(s, hub.tickets_b[1], lane="S1"))
    ev = evaluate(hub)
    [raised] = ev.raised
    assert raised["kind"] == "refused_ratio" and raised["subject"] == f"gate:{hub.gates['S']}"
    assert raised["value"] == 80.0 and "South Gate" in raised["detail"]
    # ten minutes on, the window holds no scans: the alert clears
    assert len(evaluate(hub, now=utcnow() + timedelta(minutes=10)).cleared) == 1


def test_low_entry_rate_at_a_gate_during_the_gates_open_window(hub):
    with hub.engine.begin() as conn:
        alerts.set_rule(conn, "low_entry_rate", 1, 5, True, actor="staff:3")
    s = hub.session
    now = utcnow()
    push(hub, "box1", *[entry(s, t, lane="N1", at=now - timedelta(minutes=m))
                        for m, t in enumerate(hub.tickets_a)])
    ev = evaluate(hub, now=now)
    subjects = {a["subject"] for a in ev.raised if a["kind"] == "low_entry_rate"}
    # the North Gate moves (6 in 5 min > 1/min); the South Gate and the Pool Gate do not
    assert subjects == {f"gate:{hub.gates['S']}", f"gate:{hub.gates['P']}"}
    push(hub, "box1", *[entry(s, t, lane="S1", at=now) for t in hub.tickets_b])
    push(hub, "box1", *[entry(s, t, lane="S1", at=now) for t in hub.tickets_a[:2]])
    ev = evaluate(hub, now=now)
    assert [a["subject"] for a in ev.cleared] == [f"gate:{hub.gates['S']}"]
    # after the session has started the rule no longer applies
    later = evaluate(hub, now=now + timedelta(minutes=40))
    assert {a["subject"] for a in later.cleared} >= {f"gate:{hub.gates['P']}"}
    assert open_kinds(hub) == [] or all(k != "low_entry_rate" for k, _ in open_kinds(hub))


def test_evaluations_close_together_run_once(hub):
    now = utcnow()
    with hub.engine.begin() as conn:
        assert alerts.evaluate(conn, now=now).ran
    with hub.engine.begin() as conn:
        assert not alerts.evaluate(conn, now=now + timedelta(seconds=1)).ran
    with hub.engine.begin() as conn:
        assert alerts.evaluate(conn, now=now + timedelta(seconds=6)).ran


def test_wicket_hub_alerts_evaluates_from_the_command_line(hub, hub_url, capsys):
    from cloud import cli

    heartbeat(hub, "box1", {}, clock=utcnow() + timedelta(minutes=5))
    assert cli.main(["--db", hub_url, "alerts"]) == 0
    assert f"raised: clock_skew appliance:{hub.boxes['box1']['id']}" in capsys.readouterr().out
    heartbeat(hub, "box1", {}, clock=utcnow())
    assert cli.main(["--db", hub_url, "alerts"]) == 0
    assert "cleared: clock_skew" in capsys.readouterr().out


def test_pushes_racing_each_other_count_every_entry_and_each_ticket_once(hub):
    """Three appliances push admissions of the same tickets at the same moment, each batch in
    a different order: the counters agree with the stored entries and 'entered' counts each
    ticket once."""
    import threading

    s, tickets = hub.session, hub.tickets_a + hub.tickets_b
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def run(box: str, order: list[int]) -> None:
        client = hub.client.application.test_client()
        try:
            start.wait(timeout=30)
            for t in order:
                r = client.post("/api/sync/v1/entries", headers=hub.boxes[box]["auth"],
                                json={"entries": [entry(s, t), entry(s, t, lane="S1")]})
                assert r.status_code == 200, r.get_json()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    orders = [tickets, list(reversed(tickets)), tickets[5:] + tickets[:5]]
    threads = [threading.Thread(target=run, args=(box, order))
               for box, order in zip(("box1", "box2", "box1"), orders, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    t = numbers(hub)["totals"]
    assert (t["entered"], t["entries"]) == (len(tickets), 6 * len(tickets))
    with hub.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(entries)).scalar()
    assert stored == 6 * len(tickets)


def test_lanes_reported_in_a_heartbeat_lead_to_gates_and_the_hubs_own_lanes_win(hub):
    """Through the sync API: an appliance's heartbeat says which gate each of its lanes is at;
    a lane the hub defines keeps the hub's gate, a gate code the venue does not have leads
    nowhere, and a revoked appliance's lanes are forgotten."""
    s, a = hub.session, hub.tickets_a
    now = utcnow()
    heartbeat(hub, "box1", {"lanes": [
        {"code": "N9", "gate": "N", "name": "North, lane 9"},
        {"code": "N1", "gate": "S", "name": "reported at the wrong gate"},
        {"code": "Q1", "gate": "NOPE", "name": "a gate the hub does not have"},
        {"code": "F1", "gate": None, "name": "no gate"}],
        "devices": [{"id": "ts-n9", "kind": "turnstile", "lane": "N9", "state": "up"}]})
    push(hub, "box1", entry(s, a[0], lane="N9", at=now), entry(s, a[1], lane="N1", at=now),
         entry(s, a[2], lane="Q1", at=now))
    with hub.engine.connect() as conn:
        by_gate = {(g["gate"], g["lane"]): g["entered"]
                   for g in ops.attendance(conn, [s], now=now)["by_gate"]}
        status = ops_devices.appliance_status(conn)
        online = {g["venue"]: g["online"] for g in ops_devices.gates_online(conn, status)}
    assert by_gate == {("North Gate", None): 2, (None, "Q1"): 1}
    assert online["Olympic Sports Centre"] == 1
    box = next(x for x in status if x["name"] == "Gate box 1")
    assert [(d["id"], d["gate"]) for d in box["devices"]] == [("ts-n9", "North Gate")]
    with hub.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT code, gate_code, name FROM appliance_lanes "
                                    "ORDER BY code")).all()
    assert [tuple(r) for r in rows] == [("F1", None, "no gate"),
                                        ("N1", "S", "reported at the wrong gate"),
                                        ("N9", "N", "North, lane 9"),
                                        ("Q1", "NOPE", "a gate the hub does not have")]
    # a heartbeat without lanes (an older appliance) keeps them; a revoked appliance's go
    heartbeat(hub, "box1", {})
    with hub.engine.begin() as conn:
        assert ("N1" in {c for (_v, c) in ops.lane_map(conn)}
                and (hub.venue, "N9") in ops.lane_map(conn))
        appliances.revoke(conn, hub.boxes["box1"]["id"])
        assert (hub.venue, "N9") not in ops.lane_map(conn)


def test_admissions_by_ticket_number_are_counted_apart_and_kept_with_their_staff(hub):
    s = hub.session
    now = utcnow()
    a = hub.tickets_a
    typed = entry(s, a[0], at=now, kind="manual", staff="alice")
    push(hub, "box1", typed, entry(s, a[1], at=now, kind="qr"), entry(s, a[2], at=now),
         entry(s, a[3], at=now, kind="override", staff="sue"),
         entry(s, a[4], at=now, kind="manual", staff="bob", admitted=False, reason="UNKNOWN"),
         entry(s, a[5], lane="X1", direction="out", at=now, kind="manual", staff="bob"))
    push(hub, "box1", typed)  # a resend counts nothing twice
    t = numbers(hub)["totals"]
    assert (t["entries"], t["by_number"]) == (4, 1)  # an override is not a typed number
    by_gate = {g["gate"]: g for g in numbers(hub)["by_gate"]}
    assert (by_gate["North Gate"]["by_number"], by_gate["Exit"]["by_number"]) == (1, 0)
    with hub.engine.connect() as conn:
        kept = conn.execute(sa.select(entries.c.kind, entries.c.staff)
                            .where(entries.c.id == typed["id"])).one()
    assert tuple(kept) == ("manual", "alice")
