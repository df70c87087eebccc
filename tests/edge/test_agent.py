"""The sync agent's steps against the hub app served in-process on loopback (real HTTP, both
hub databases), and the backoff of the hub link."""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from cloud import appliances
from cloud.app import create_app
from cloud.db import init_db
from cloud.tickets import (
    activate_key,
    create_event,
    create_key,
    create_session,
    issue_ticket,
    revoke_ticket,
)
from cloud.venues import add_gate, add_zone, create_venue
from edge import config as config_mod
from edge import db as db_mod
from edge import snapshot
from edge.agent import Agent, cursor_of, enroll, load_link, save_link
from edge.holders import HolderVault, generate_holder_key
from edge.sync_service import HubLinkState
from edge.sync_status import status
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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
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


def add_entries(conn, n, bad_id=None):
    ids = []
    for i in range(n):
        eid = str(uuid7()) if i != bad_id else "not-a-uuid"
        conn.execute("INSERT INTO entries (id, at, day, direction, scan_kind, scan_ref, "
                     "ticket_id, admitted, reason) VALUES (?, ?, '2026-07-01', 'in', 'qr', 'x', "
                     "?, 1, 'OK')", (eid, to_iso(utcnow()), 1000 + i))
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
    ids = add_entries(agent.conn, 9, bad_id=5)
    assert agent.push_entries() == 9
    assert sorted(hub_entry_ids(hub)) == sorted(i for i in ids if i != "not-a-uuid")
    rows = dict(agent.conn.execute("SELECT id, ack_status FROM entries").fetchall())
    assert rows.pop("not-a-uuid") == "refused" and set(rows.values()) == {"stored"}
    s = status(agent.cfg, agent.conn)
    assert s["entries"]["refused_by_reason"] == {"bad_entry": 1}
    assert s["entries"]["queued"] == 0
    assert agent.conn.execute("SELECT count(*) FROM entries").fetchone() == (9,)  # none dropped


def test_an_admission_waiting_for_its_passage_stays_until_it_is_settled(agent, hub):
    ids = add_entries(agent.conn, 3)
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
    ids = add_entries(agent.conn, 6)

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
    with caplog.at_level(logging.INFO, logger="edge.sync_service"):
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
    chosen = "n" * 43
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


def test_entries_reach_the_hub_with_their_scan_kind_and_staff_member(agent, hub):
    scanned, typed = add_entries(agent.conn, 2)
    agent.conn.execute("UPDATE entries SET scan_kind = 'manual', staff = 'alice' WHERE id = ?",
                       (typed,))
    assert agent.push_entries() == 2
    with hub["engine"].begin() as conn:
        kept = {r[0]: (r[1], r[2])
                for r in conn.execute(sa.text("SELECT id, kind, staff FROM entries"))}
    assert kept == {scanned: ("qr", None), typed: ("manual", "alice")}
