"""``wicket-provision enroll`` against a real hub process: the good path with its first full
sync, and every refusal a field tech meets — each a clear message, its own exit status, and
nothing left half-written on the box."""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.sales.tickets import issue_ticket
from sync.timeutil import utcnow
from tests.e2e.conftest import free_port
from tests.provisioning.conftest import provision


def _nothing_written(box) -> None:
    assert sorted(p.name for p in box.parent.iterdir()) == []


def test_enroll_creates_config_enrolls_and_runs_the_first_full_sync(hub, box):
    venue = hub.add_venue("OSC")
    with hub.begin() as conn:
        for _ in range(7):
            issue_ticket(conn, session_id=venue["session"])
    token = hub.token(venue)
    r = provision("enroll", "--hub", hub.process.url, "--token", "-", config=box,
                  input=token + "\n")
    assert r.returncode == 0, r.stderr
    assert box.stat().st_mode & 0o777 == 0o600
    credential = box.with_name("edge.hub.json")
    assert credential.stat().st_mode & 0o777 == 0o600
    assert json.loads(credential.read_text())["hub_url"] == hub.process.url
    assert token not in r.stdout + r.stderr
    assert "first full sync done" in r.stdout and "wicket-provision install" in r.stdout
    assert "wicket-provision doctor" in r.stdout
    # not a terminal: plain progress lines, no carriage returns
    assert "synced" in r.stderr and "\r" not in r.stderr
    conn = sqlite3.connect(box.with_name("edge.db"))
    try:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone()[0] == 7
        assert conn.execute("SELECT count(*) FROM sync_state WHERE last_ok_at IS NULL"
                            ).fetchone()[0] == 0
    finally:
        conn.close()
    with hub.begin() as conn:
        state = conn.execute(sa.text("SELECT state FROM appliances")).scalar_one()
    assert state == "active"

    # the same box again, with a fresh token: refused until it is reset
    r = provision("enroll", "--hub", hub.process.url, "--token=" + hub.token(venue, "b2"),
                  config=box)
    assert r.returncode == 8 and "already enrolled" in r.stderr and "reset" in r.stderr


def test_enroll_from_the_qr_payload_the_hub_shows(hub, box):
    venue = hub.add_venue("QRV")
    payload = json.dumps({"v": 1, "hub": hub.process.url, "token": hub.token(venue)})
    r = provision("enroll", "--qr", "-", config=box, input=payload)
    assert r.returncode == 0, r.stderr
    assert box.with_name("edge.hub.json").exists()
    r = provision("enroll", "--qr", '{"v": 2}', config=box.with_name("other.toml"))
    assert r.returncode == 2 and "version 1" in r.stderr


def test_bad_token_is_refused_and_leaves_nothing(hub, box):
    hub.add_venue("BAD")
    r = provision("enroll", "--hub", hub.process.url, "--token", "not-a-token", config=box)
    assert r.returncode == 4, r.stderr
    assert "not valid" in r.stderr and "Fix:" in r.stderr
    _nothing_written(box)


def test_expired_token_is_refused_and_leaves_nothing(hub, box):
    venue = hub.add_venue("EXP")
    token = hub.token(venue)
    with hub.begin() as conn:
        conn.execute(sa.text("UPDATE appliances SET token_expires_at = :t"),
                     {"t": utcnow() - timedelta(minutes=1)})
    r = provision("enroll", "--hub", hub.process.url, f"--token={token}", config=box)
    assert r.returncode == 5, r.stderr
    assert "expired" in r.stderr and "register the appliance again" in r.stderr
    _nothing_written(box)


def test_a_used_token_is_refused_on_a_second_box(hub, box, tmp_path):
    venue = hub.add_venue("USE")
    token = hub.token(venue)
    assert provision("enroll", "--hub", hub.process.url, f"--token={token}",
                     config=box).returncode == 0
    second = tmp_path / "second" / "edge.toml"
    second.parent.mkdir()
    # the hub forgets a token once it is spent: it reads as unknown, and the message says so
    r = provision("enroll", "--hub", hub.process.url, f"--token={token}", config=second)
    assert r.returncode == 4, r.stderr
    assert "already used" in r.stderr and "register the appliance again" in r.stderr
    _nothing_written(second)


def test_the_hubs_token_used_answer_has_its_own_exit(hub, box):
    venue = hub.add_venue("US2")
    token = hub.token(venue)
    with hub.begin() as conn:  # a token whose appliance is no longer pending
        conn.execute(sa.text("UPDATE appliances SET state = 'active'"))
    r = provision("enroll", "--hub", hub.process.url, f"--token={token}", config=box)
    assert r.returncode == 6, r.stderr
    assert "already used" in r.stderr and "each token enrolls one box once" in r.stderr
    _nothing_written(box)


def test_unreachable_hub_is_refused_and_leaves_nothing(box):
    r = provision("enroll", "--hub", f"http://127.0.0.1:{free_port()}", "--token",
                  secrets.token_hex(32), config=box)
    assert r.returncode == 3, r.stderr
    assert "cannot reach the hub" in r.stderr
    _nothing_written(box)


@pytest.mark.parametrize("token", ["t", "0" * 64, "0123456789abcdef" * 4,
                                   "0123456789ABCDEF" * 4])
def test_a_malformed_or_guessable_token_is_refused_before_the_hub_is_asked(box, token):
    r = provision("enroll", "--hub", f"http://127.0.0.1:{free_port()}", "--token", token,
                  config=box)
    assert r.returncode == 4, r.stderr
    assert "not valid" in r.stderr or "too predictable" in r.stderr
    assert "Fix:" in r.stderr and (len(token) < 8 or token not in r.stderr)
    _nothing_written(box)


def test_wrong_clock_is_refused_before_the_token_is_spent(hub, box):
    faketime = shutil.which("faketime")
    assert faketime, "faketime is missing (Debian: faketime)"
    venue = hub.add_venue("CLK")
    token = hub.token(venue)
    r = provision("enroll", "--hub", hub.process.url, f"--token={token}", config=box,
                  prefix=(faketime, "-f", "-3h"))
    assert r.returncode == 7, r.stderr
    assert "behind the hub's" in r.stderr and "timedatectl set-ntp true" in r.stderr
    _nothing_written(box)
    # the token was not spent: with the clock right, the same token enrolls the box
    r = provision("enroll", "--hub", hub.process.url, f"--token={token}", config=box)
    assert r.returncode == 0, r.stderr
