"""The sync agent's steps against the hub app served in-process on loopback (real HTTP, both
hub databases), and the backoff of the hub link."""

from __future__ import annotations

import dataclasses
import logging
import random
import secrets
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from cloud.app import create_app
from cloud.catalog.events import create_event
from cloud.catalog.venues import add_gate, add_zone, create_venue
from cloud.core.db import init_db
from cloud.fleet import appliances
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory.sessions import create_session
from cloud.sales.tickets import issue_ticket, revoke_ticket
from edge import config as config_mod
from edge import db as db_mod
from edge.holders import HolderVault, generate_holder_key
from edge.uplink import snapshot
from edge.uplink.agent import Agent, cursor_of, enroll, load_link, save_link
from edge.uplink.service import HubLinkState
from edge.uplink.status import status
from sync import schemas
from sync.client import HubUnavailable
from sync.ids import uuid7
from sync.timeutil import to_iso, utcnow
from tests.cloud import conftest as cloud_conftest

hub_url = cloud_conftest.hub_url  # the fixture: every test here runs on both hub databases


@pytest.fixture
def hub(hub_url):
    init_db(hub_url)
    app = create_app({"DATABASE_URL": hub_url})
    engine = app.extensions["db"]
    now = utcnow()
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        add_zone(conn, venue, "A", "North")
        add_gate(conn, venue, "G1", "Gate 1", ["A"])
        event = create_event(conn, "CUP", "Cup")
        session = create_session(conn, event, venue, "Final", now - timedelta(minutes=5),
                                 now + timedelta(hours=2))
        tickets = [issue_ticket(conn, session_id=session) for _ in range(20)]
        token = appliances.register(conn, venue, "box").token
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "engine": engine, "token": token,
           "tickets": tickets, "session": session, "venue": venue}
    server.shutdown()
    server.server_close()
    thread.join(timeout=30)
    engine.dispose()


@pytest.fixture
def agent(hub, tmp_path):
    path = tmp_path / "edge.toml"
    config_mod.write_new(path, {"holder_key": generate_holder_key(), "database": "edge.db",
                                "sync_page_size": 7, "sync_batch_size": 4})
    cfg = config_mod.load(path)
    db_mod.migrate(db_mod.open_db(cfg.database))
    conn = db_mod.connect(cfg.database)
    enroll(cfg, conn, hub["url"], hub["token"])
    a = Agent(cfg, conn, HolderVault(cfg.holder_key), load_link(cfg))
    yield a
    a.client.close()
    conn.close()


def add_entries(conn, n, bad_id=None, tickets=()):
    """``n`` admissions, of the hub's ``tickets`` in turn (the hub refuses tickets it does
    not know)."""
    ids = []
    for i in range(n):
        eid = str(uuid7()) if i != bad_id else "not-a-uuid"
        conn.execute("INSERT INTO entries (id, at, day, direction, scan_kind, scan_ref, "
                     "ticket_id, admitted, reason) VALUES (?, ?, '2026-07-01', 'in', 'qr', 'x', "
                     "?, 1, 'OK')", (eid, to_iso(utcnow()), tickets[i % len(tickets)].id))
        ids.append(eid)
    return ids


def hub_entry_ids(hub):
    with hub["engine"].begin() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT id FROM entries"))]


def test_pages_apply_with_their_cursor_and_the_checksum_agrees(agent, hub):
    agent.pull_allowlist()
    cursor, count = cursor_of(agent.conn, "allowlist")
    assert agent.conn.execute("SELECT count(*) FROM tickets").fetchone() == (20,)
    assert cursor > 0 and count > 20
    assert agent.pull_allowlist() == 0  # caught up: nothing new, nothing applied twice
    assert cursor_of(agent.conn, "allowlist")[1] == count


def test_a_refused_entry_is_kept_with_its_reason_and_the_rest_get_through(agent, hub):
    ids = add_entries(agent.conn, 9, bad_id=5, tickets=hub["tickets"])
    assert agent.push_entries() == 9
    assert sorted(hub_entry_ids(hub)) == sorted(i for i in ids if i != "not-a-uuid")
    rows = dict(agent.conn.execute("SELECT id, ack_status FROM entries").fetchall())
    assert rows.pop("not-a-uuid") == "refused" and set(rows.values()) == {"stored"}
    s = status(agent.cfg, agent.conn)
    assert s["entries"]["refused_by_reason"] == {"bad_entry": 1}
    assert s["entries"]["queued"] == 0
    assert agent.conn.execute("SELECT count(*) FROM entries").fetchone() == (9,)  # none dropped


def test_an_entry_of_another_venue_is_refused_by_the_hub_kept_and_shown(agent, hub):
    """The hub refuses an admission of another venue's ticket (``other_venue``): the appliance
    keeps it as refused with that reason, reports it, and sends it no more."""
    with hub["engine"].begin() as conn:
        other = create_venue(conn, "AQC", "Aquatics Centre")
        event = create_event(conn, "SWIM", "Swim")
        elsewhere = create_session(conn, event, other, "Heats", utcnow(),
                                   utcnow() + timedelta(hours=2))
        foreign = issue_ticket(conn, session_id=elsewhere)
    ours = add_entries(agent.conn, 2, tickets=hub["tickets"])
    (theirs,) = add_entries(agent.conn, 1, tickets=[foreign])
    assert agent.push_entries() == 3
    assert sorted(hub_entry_ids(hub)) == sorted(ours)
    rows = {r[0]: r[1:] for r in agent.conn.execute(
        "SELECT id, ack_status, ack_reason FROM entries")}
    assert rows[theirs] == ("refused", "other_venue")
    assert status(agent.cfg, agent.conn)["entries"]["refused_by_reason"] == {"other_venue": 1}
    assert agent.report()["queue"]["refused"] == 1
    assert agent.push_entries() == 0  # kept, never sent again
    assert agent.conn.execute("SELECT count(*) FROM entries").fetchone() == (3,)


def test_the_agents_report_and_entries_match_the_sync_schemas(agent, hub):
    agent.conn.execute("INSERT INTO devices (id, kind, state, state_detail, state_at) VALUES "
                       "('cam', 'qr_camera', 'degraded', ?, '2021-03-01T00:00:00.000000Z')",
                       ("x" * 5000,))
    add_entries(agent.conn, 1, tickets=hub["tickets"])
    schemas.check("heartbeat", {"state": agent.report(), "clock": to_iso(utcnow()),
                                "done": [1]})
    agent.step("heartbeat")  # the hub takes it
    agent.conn.execute("UPDATE entries SET reason = 'ADMITTED'")  # not a reason of the contract
    assert agent.push_entries() == 1
    assert hub_entry_ids(hub) == []
    assert agent.conn.execute("SELECT ack_status, ack_reason FROM entries").fetchone() == (
        "refused", "bad_entry")


def test_an_admission_waiting_for_its_passage_stays_until_it_is_settled(agent, hub):
    ids = add_entries(agent.conn, 3, tickets=hub["tickets"])
    agent.conn.execute("UPDATE entries SET passage = 'pending' WHERE id = ?", (ids[1],))
    assert agent.push_entries() == 2
    assert sorted(hub_entry_ids(hub)) == sorted([ids[0], ids[2]])
    # no passage came: the runtime annuls the admission, and only then does it leave
    agent.conn.execute("UPDATE entries SET passage = 'timeout', admitted = 0 WHERE id = ?",
                       (ids[1],))
    assert agent.push_entries() == 1
    assert sorted(hub_entry_ids(hub)) == sorted(ids)
    with hub["engine"].begin() as conn:
        assert conn.execute(sa.text("SELECT admitted FROM entries WHERE id = :i"),
                            {"i": ids[1]}).scalar_one() in (0, False)


def test_an_answer_lost_before_the_ack_just_sends_again(agent, hub, monkeypatch):
    ids = add_entries(agent.conn, 6, tickets=hub["tickets"])

    def killed(*args, **kwargs):
        raise RuntimeError("killed")

    # as if the agent was killed after the hub stored the batch and before the ack committed
    with monkeypatch.context() as m:
        m.setattr(agent, "_ack", killed)
        with pytest.raises(RuntimeError):
            agent.push_entries()
    first_batch = set(hub_entry_ids(hub))
    assert first_batch and first_batch < set(ids)
    assert agent.push_entries() == 6
    assert sorted(hub_entry_ids(hub)) == sorted(ids)
    assert dict(agent.conn.execute("SELECT id, ack_status FROM entries").fetchall()) == {
        i: "duplicate" if i in first_batch else "stored" for i in ids}


def test_a_checksum_mismatch_takes_a_snapshot(agent, hub):
    agent.pull_allowlist()
    agent.conn.execute("DELETE FROM tickets WHERE id = ?", (hub["tickets"][3].id,))  # lost
    agent.conn.execute("UPDATE sync_state SET changes = changes - 1 WHERE stream = 'allowlist'")
    with hub["engine"].begin() as conn:
        issue_ticket(conn, session_id=hub["session"])
    agent.pull_allowlist()
    assert agent.conn.execute("SELECT count(*) FROM tickets").fetchone() == (21,)
    assert status(agent.cfg, agent.conn)["last_snapshot_at"] is not None
    assert not snapshot.staging_path(agent.cfg).exists()


def test_revocations_learnt_during_a_snapshot_survive_the_swap(agent, hub):
    agent.pull_allowlist()
    staging = db_mod.open_db(snapshot.staging_path(agent.cfg))
    db_mod.migrate(staging)
    agent.pull_into(staging.conn)  # the snapshot is downloaded ...
    staging.conn.close()
    with hub["engine"].begin() as conn:  # ... then a refund, which the fast stream brings
        revoke_ticket(conn, hub["tickets"][0].id)
    agent.pull_revocations()
    snapshot.swap(agent.conn, snapshot.staging_path(agent.cfg))
    assert agent.conn.execute("SELECT ticket_id FROM revocations").fetchall() == [
        (hub["tickets"][0].id,)]
    rev, _ = cursor_of(agent.conn, "revocations")
    allow, _ = cursor_of(agent.conn, "allowlist")
    assert rev > allow


def test_backoff_doubles_with_jitter_up_to_the_cap_and_logs_once(tmp_path, caplog):
    db = db_mod.open_db(tmp_path / "e.db")
    db_mod.migrate(db)
    now = [0.0]
    link = HubLinkState(db.conn, backoff_max_s=8, rng=random.Random(1), clock=lambda: now[0])
    delays = []
    with caplog.at_level(logging.INFO, logger="edge.uplink.service"):
        for _ in range(7):
            assert link.ready()
            link.failed(HubUnavailable("down"))
            delays.append(link.next_at - now[0])
            assert not link.ready()
            now[0] = link.next_at
        link.ok()
        link.ok()
    caps = [1, 2, 4, 8, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, caps, strict=True))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("hub unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert link.ready()


def test_a_credential_roll_whose_answer_was_lost_completes_on_the_next_call(agent, hub):
    # the appliance chose and wrote down the new credential, the hub switched, the answer
    # never came back
    chosen = secrets.token_urlsafe(32)
    agent.link = dataclasses.replace(agent.link, next_credential=chosen)
    save_link(agent.cfg, agent.link)
    with hub["engine"].begin() as conn:
        appliance = appliances.authenticate(conn, agent.link.credential)
        appliances.roll_credential(conn, appliance, chosen)
    agent.step("heartbeat")  # the old credential gets 401; the new one works
    link = load_link(agent.cfg)
    assert link.credential == chosen and link.next_credential is None
    assert agent.conn.execute("SELECT count(*) FROM appliance_state WHERE key = 'revoked_at'"
                              ).fetchone() == (0,)
    agent.roll_credential()  # and a roll that goes through
    assert load_link(agent.cfg).credential not in (chosen, None)
    agent.step("heartbeat")


def test_a_chosen_credential_must_be_long_enough(hub, agent):
    with hub["engine"].begin() as conn:
        appliance = appliances.authenticate(conn, agent.link.credential)
        with pytest.raises(appliances.ApplianceError, match="43 to 128"):
            appliances.roll_credential(conn, appliance, "short")


def test_the_appliances_lanes_lead_its_entries_and_devices_to_their_gate_at_the_hub(agent, hub):
    """The hub defines no lanes here: the appliance's heartbeat says which gate each lane is
    at, and the ops pages count attendance per gate and gates online from that."""
    from cloud.ops import attendance as ops
    from cloud.ops import devices as ops_devices
    from edge.engine import Engine, Scan, ScanKind
    from edge.reasons import Reason

    agent.pull_allowlist()
    gate = agent.conn.execute("SELECT id FROM gates WHERE code = 'G1'").fetchone()[0]
    lane = agent.conn.execute("INSERT INTO lanes (code, name, gate_id) VALUES ('L7', "
                              "'Gate 1, lane 7', ?)", (gate,)).lastrowid
    agent.conn.execute("INSERT INTO devices (id, lane_id, kind, state) VALUES ('ts-l7', ?, "
                       "'turnstile', 'up')", (lane,))
    report = agent.report()
    assert report["lanes"] == [{"code": "L7", "gate": "G1", "name": "Gate 1, lane 7"}]
    assert report["devices"][0]["lane"] == "L7"

    engine = Engine(agent.conn, HolderVault(agent.cfg.holder_key))
    for t in hub["tickets"][:3]:
        assert engine.decide(Scan(ScanKind.QR, t.code), "L7").reason is Reason.OK
    assert engine.decide(Scan(ScanKind.QR, hub["tickets"][0].code), "L7").reason is not Reason.OK
    agent.heartbeat()
    assert agent.push_entries() == 4
    with hub["engine"].connect() as conn:
        by_gate = ops.attendance(conn, [hub["session"]])["by_gate"]
        online = ops_devices.gates_online(conn, ops_devices.appliance_status(conn))
    assert [(g["gate"], g["lane"], g["entered"], g["refused"]) for g in by_gate] == [
        ("Gate 1", None, 3, 1)]
    assert [(v["gates"], v["online"]) for v in online] == [(1, 1)]

    # a lane moved to no gate the hub knows: its entries are the lane's, not a gate's
    agent.conn.execute("DELETE FROM devices")
    agent.conn.execute("DELETE FROM lanes")
    agent.heartbeat()
    with hub["engine"].connect() as conn:
        by_gate = ops.attendance(conn, [hub["session"]])["by_gate"]
    assert [(g["gate"], g["lane"]) for g in by_gate] == [(None, "L7")]


def test_entries_reach_the_hub_with_their_scan_kind_and_staff_member(agent, hub):
    scanned, typed = add_entries(agent.conn, 2, tickets=hub["tickets"])
    agent.conn.execute("UPDATE entries SET scan_kind = 'manual', staff = 'alice' WHERE id = ?",
                       (typed,))
    assert agent.push_entries() == 2
    with hub["engine"].begin() as conn:
        kept = {r[0]: (r[1], r[2])
                for r in conn.execute(sa.text("SELECT id, kind, staff FROM entries"))}
    assert kept == {scanned: ("qr", None), typed: ("manual", "alice")}
