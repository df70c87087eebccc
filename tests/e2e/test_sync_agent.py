"""The sync agent end to end: a real hub process, appliances enrolled and synced through the
``wicket-edge`` command line, scans decided by the edge engine on the appliance database."""

from __future__ import annotations

import json

from cloud.tickets import issue_ticket
from edge.reasons import Reason


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
