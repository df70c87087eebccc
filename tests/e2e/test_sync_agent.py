"""The sync agent end to end: a real hub process, appliances enrolled and synced through the
``wicket-edge`` command line, scans decided by the edge engine on the appliance database."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.core.changes import record_change
from cloud.core.compaction import compact
from cloud.fleet import appliances
from cloud.fleet.keys import SigningKeyError, activate_key, create_key
from cloud.sales.tickets import issue_ticket, revoke_ticket
from edge.reasons import Reason
from sync import codes
from sync.sample import fake_resident_id
from sync.timeutil import utcnow
from tests.e2e.conftest import wait_for


def test_fresh_appliance_enrolls_syncs_and_admits_valid_tickets_only(hub, make_appliance):
    venue = hub.add_venue("OSC")
    with hub.begin() as conn:
        tickets = [issue_ticket(conn, session_id=venue["session"]) for _ in range(5)]
    other = hub.add_venue("FAR")
    with hub.begin() as conn:
        elsewhere = issue_ticket(conn, session_id=other["session"])
    box = make_appliance()
    r = box.cli("enroll", "--hub", hub.process.url, "--token", hub.token(venue))
    assert r.returncode == 0, r.stderr
    link = json.loads(box.cfg.credential_path.read_text())
    assert box.cfg.credential_path.stat().st_mode & 0o777 == 0o600
    assert link["credential"] not in r.stdout + r.stderr
    r = box.cli("sync", "--once")
    assert r.returncode == 0, r.stderr
    box.add_lane()
    assert box.query("SELECT count(*) FROM tickets") == [(5,)]
    assert box.scan(tickets[0].code).reason is Reason.OK
    assert box.scan(tickets[0].code).reason is Reason.ALREADY_ENTERED
    assert box.scan(elsewhere.code).reason is not Reason.OK
    assert box.scan("NOT-A-TICKET").reason is Reason.UNKNOWN
    r = box.cli("sync", "--once")
    assert r.returncode == 0, r.stderr
    assert len(hub.hub_entries()) == 4
    status = json.loads(box.cli("status", "--json").stdout)
    assert status["entries"]["queued"] == 0 and status["hub"] == "up"
    assert status["streams"]["allowlist"]["last_ok_at"] is not None


def test_enroll_with_a_bad_token_or_no_hub_fails_clearly(hub, make_appliance):
    box = make_appliance()
    r = box.cli("enroll", "--hub", hub.process.url, "--token", "not-a-token")
    assert r.returncode == 4 and "not valid" in r.stderr
    r = box.cli("enroll", "--hub", "http://127.0.0.1:9", "--token", "x")
    assert r.returncode == 3 and "cannot reach the hub" in r.stderr
    assert not box.cfg.credential_path.exists()


def enrolled(hub, make_appliance, venue, name="edge", settings=None):
    box = make_appliance(name, settings)
    r = box.cli("enroll", "--hub", hub.process.url, "--token", hub.token(venue, name))
    assert r.returncode == 0, r.stderr
    r = box.cli("sync", "--once")
    assert r.returncode == 0, r.stderr
    box.add_lane()
    return box


def test_hub_down_scanning_goes_on_and_every_entry_arrives_exactly_once(hub, make_appliance):
    venue = hub.add_venue("OSC")
    with hub.begin() as conn:
        tickets = [issue_ticket(conn, session_id=venue["session"]) for _ in range(12)]
    box = enrolled(hub, make_appliance, venue)
    box.start_agent()
    assert box.scan(tickets[0].code).reason is Reason.OK
    wait_for(lambda: len(hub.hub_entries()) == 1, what="the first entry at the hub")
    hub.process.stop()
    for t in tickets[1:]:
        assert box.scan(t.code).reason is Reason.OK  # the gate never waits for the hub
    wait_for(lambda: json.loads(box.cli("status", "--json").stdout)["hub"] == "down",
             what="the agent to notice the hub is down")
    status = json.loads(box.cli("status", "--json").stdout)
    assert status["entries"]["queued"] == 11
    hub.process.start()
    wait_for(lambda: len(hub.hub_entries()) == 12, timeout=90, what="every entry at the hub")
    wait_for(lambda: box.query("SELECT count(*) FROM entries WHERE acked_at IS NULL") == [(0,)],
             what="every entry acknowledged")
    local = {r[0] for r in box.query("SELECT id FROM entries")}
    arrived = [r[0] for r in hub.hub_entries()]
    assert sorted(arrived) == sorted(local) and len(arrived) == len(set(arrived)) == 12
    code, err = box.stop_agent()
    assert code == 0
    assert err.count("hub unreachable") == 1 and err.count("hub reachable again") == 1


def test_a_refund_while_offline_is_admitted_flagged_then_refused(hub, make_appliance):
    venue = hub.add_venue("OSC")
    with hub.begin() as conn:
        used, unused = (issue_ticket(conn, session_id=venue["session"]) for _ in range(2))
    box = enrolled(hub, make_appliance, venue)
    hub.process.stop()  # the venue is offline
    with hub.begin() as conn:
        revoke_ticket(conn, used.id)
        revoke_ticket(conn, unused.id)
    assert box.scan(used.code).reason is Reason.OK  # the venue cannot know yet
    assert box.cli("sync", "--once").returncode == 3
    hub.process.start()
    r = box.cli("sync", "--once")
    assert r.returncode == 0, r.stderr
    assert hub.conflicts() == [("admitted_before_revocation_known", used.id)]
    assert box.scan(unused.code).reason is Reason.REVOKED
    assert box.scan(used.code).reason is Reason.REVOKED
    assert box.cli("sync", "--once").returncode == 0
    assert hub.conflicts() == [("admitted_before_revocation_known", used.id)]  # nothing new


def test_one_pass_at_two_venues_cut_off_from_each_other(hub, make_appliance):
    north, south = hub.add_venue("NTH"), hub.add_venue("STH")
    now = utcnow().replace(second=0, microsecond=0)
    with hub.begin() as conn:
        pass_ = issue_ticket(conn, kind=codes.Kind.VENUES, scope=(north["id"], south["id"]),
                             daily_limit=1, valid_from=now - timedelta(hours=1),
                             valid_until=now + timedelta(days=1))
    a = enrolled(hub, make_appliance, north, "north")
    b = enrolled(hub, make_appliance, south, "south")
    assert a.scan(pass_.code).reason is Reason.OK
    assert b.scan(pass_.code).reason is Reason.OK  # neither knows of the other's entry
    assert a.cli("sync", "--once").returncode == 0
    assert hub.conflicts() == []
    assert b.cli("sync", "--once").returncode == 0
    assert hub.conflicts() == [("double_admission", pass_.id)]


def test_a_revoked_appliance_is_refused_and_wipes_its_personal_data(hub, make_appliance):
    venue = hub.add_venue("OSC")
    rng = random.Random(4)
    with hub.begin() as conn:
        named = issue_ticket(conn, session_id=venue["session"],
                             holder=("Li Wei", "resident_id", fake_resident_id(rng)))
    box = enrolled(hub, make_appliance, venue)
    assert box.query("SELECT count(*) FROM holders") == [(1,)]
    assert box.scan(named.code).reason is Reason.OK
    with hub.begin() as conn:
        appliance_id = conn.execute(sa.text("SELECT id FROM appliances")).scalar()
        appliances.revoke(conn, appliance_id)
    box.start_agent()  # the service: its first call gets 401, it wipes and stops
    wait_for(lambda: box.agent.poll() is not None, what="the agent to stop")
    code, err = box.stop_agent()
    assert code == 4 and "personal data wiped" in err
    assert box.query("SELECT count(*) FROM holders") == [(0,)]
    assert box.query("SELECT count(*) FROM tickets WHERE holder_id IS NOT NULL") == [(0,)]
    assert not box.cfg.credential_path.exists()
    assert box.query("SELECT count(*) FROM entries") == [(1,)]  # entries are not personal data
    status = json.loads(box.cli("status", "--json").stdout)
    assert status["revoked_at"] is not None and not status["enrolled"]
    r = box.cli("sync", "--once")
    assert r.returncode == 4 and "revoked" in r.stderr


def test_a_new_hub_key_arrives_before_codes_signed_with_it_are_sold(hub, make_appliance):
    venue = hub.add_venue("OSC")
    box = enrolled(hub, make_appliance, venue)
    with hub.begin() as conn:
        new_key = create_key(conn)  # published, signs nothing yet
    # the hub will not let it sign while an active appliance has not reported having it
    with hub.begin() as conn, pytest.raises(SigningKeyError, match="not yet"):
        activate_key(conn, new_key)
    assert box.cli("sync", "--once").returncode == 0
    assert (new_key,) in box.query("SELECT key_id FROM hub_keys")
    hub.process.stop()  # offline from here on: the ticket below never reaches the appliance
    with hub.begin() as conn:
        activate_key(conn, new_key)
        fresh = issue_ticket(conn, session_id=venue["session"])
    decision = box.scan(fresh.code)
    assert decision.reason is Reason.OK and decision.offline_code
    assert box.query("SELECT count(*) FROM tickets WHERE id = ?", fresh.id) == [(0,)]
    hub.process.start()


def test_an_expired_cursor_takes_a_snapshot_and_keeps_local_data(hub, make_appliance):
    venue = hub.add_venue("OSC")
    with hub.begin() as conn:
        tickets = [issue_ticket(conn, session_id=venue["session"]) for _ in range(30)]
    box = enrolled(hub, make_appliance, venue)
    conn = box.connect()
    conn.execute("INSERT INTO devices (id, lane_id, kind, name) VALUES ('cam-1', "
                 "(SELECT id FROM lanes WHERE code = 'L1'), 'qr_camera', 'North camera')")
    conn.execute("INSERT INTO staff_users (username, password_hash, role, created_at) "
                 "VALUES ('ops', 'x', 'admin', '2026-01-01T00:00:00Z')")
    conn.close()
    hub.process.stop()
    for t in tickets[:5]:
        assert box.scan(t.code).reason is Reason.OK  # queued while the hub is away
    with hub.begin() as conn:
        revoke_ticket(conn, tickets[10].id)
        record_change(conn, venue["id"], {"type": "zone", "op": "upsert", "id": 77,
                                          "code": "T", "name": "Temporary"})
        record_change(conn, venue["id"], {"type": "zone", "op": "delete", "id": 77})
        fresh = issue_ticket(conn, session_id=venue["session"])
        compact(conn, keep_days=0, now=utcnow() + timedelta(seconds=1))
    hub.process.start()
    r = box.cli("sync", "--once")
    assert r.returncode == 0, r.stderr
    status = json.loads(box.cli("status", "--json").stdout)
    assert status["last_snapshot_at"] is not None and status["snapshot_started_at"] is None
    assert not (box.cfg.database.parent / "edge.db.snapshot").exists()
    assert box.query("SELECT id, lane_id IS NOT NULL FROM devices") == [("cam-1", 1)]
    assert box.query("SELECT username FROM staff_users") == [("ops",)]
    assert box.query("SELECT count(*) FROM entries WHERE acked_at IS NULL") == [(0,)]
    assert len(hub.hub_entries()) == 5
    assert box.scan(tickets[10].code).reason is Reason.REVOKED
    assert box.scan(fresh.code).reason is Reason.OK
    assert box.query("SELECT count(*) FROM zones WHERE id = 77") == [(0,)]
    assert box.cli("sync", "--once").returncode == 0  # and plain deltas from there on


def test_the_hubs_commands_resync_and_roll_the_credential(hub, make_appliance):
    venue = hub.add_venue("OSC")
    box = enrolled(hub, make_appliance, venue)
    before = json.loads(box.cfg.credential_path.read_text())["credential"]
    with hub.begin() as conn:
        appliance_id = conn.execute(sa.text("SELECT id FROM appliances")).scalar()
        appliances.queue_command(conn, appliance_id, "roll_credential")
        appliances.queue_command(conn, appliance_id, "resync")
    r = box.cli("sync", "--once")
    assert r.returncode == 0, r.stderr
    after = json.loads(box.cfg.credential_path.read_text())["credential"]
    assert after != before
    assert json.loads(box.cli("status", "--json").stdout)["last_snapshot_at"] is not None
    assert box.cli("sync", "--once").returncode == 0  # the new credential works


def test_sigterm_the_moment_the_agent_starts_always_stops_it_cleanly(hub, make_appliance):
    """The first jobs are handed to the worker the instant the agent starts; a SIGTERM landing
    then must stop it at once with status 0 (a handler that took the scheduler's locks could
    deadlock with the main thread it interrupted, and the agent would hang until killed)."""
    venue = hub.add_venue("OSC")
    box = enrolled(hub, make_appliance, venue)
    for delay in (0.0, 0.001, 0.005, 0.01, 0.02, 0.05):
        box.start_agent()
        assert box.agent is not None
        while "sync agent started" not in box.agent.stderr.readline():
            assert box.agent.poll() is None, "the agent exited before it started"
        time.sleep(delay)
        box.agent.send_signal(signal.SIGTERM)
        try:
            code = box.agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            box.agent.kill()
            raise AssertionError(f"the agent hung on a SIGTERM {delay} s after it started") from None
        box.agent.stderr.close()
        box.agent = None
        assert code == 0
