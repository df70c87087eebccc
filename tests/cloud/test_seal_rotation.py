"""Rotating the data key: ``wicket-hub rotate-data-key`` seals every holder again under a new
key in batches while the hub keeps serving, shows its progress on standard error, and after a
kill half-way resumes and finishes, leaving nothing under the old key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa

from cloud.catalog.events import create_event
from cloud.catalog.venues import add_zone, create_venue
from cloud.cli import KILL_AFTER_BATCHES
from cloud.core.changes import change_log, changes_since, open_changes
from cloud.core.db import init_db, make_engine
from cloud.core.seal import ENV, context, create_key_file, key_id_of, load_keyring, read_key_file
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory.sessions import create_session
from cloud.sales.holders import document_match, holder
from cloud.sales.tables import holders
from cloud.sales.tickets import TicketSpec, issue_tickets
from cloud.staff import totp
from cloud.staff.staff import create_staff
from cloud.staff.tables import staff_totp
from sync.sample import resident_id

START = datetime(2026, 7, 1, 11, 0, tzinfo=UTC)
ROOT = Path(__file__).parents[2]
PEOPLE = [(f"Holder {i:02d}", resident_id(f"110101199003{i:02d}123")) for i in range(1, 25)]


@pytest.fixture
def hub(hub_url, tmp_path):
    key = str(tmp_path / "rotating.key")
    create_key_file(key)
    init_db(hub_url, key)
    engine = make_engine(hub_url, key)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        add_zone(conn, venue, "A", "North Stand")
        event = create_event(conn, "GAMES", "The Games")
        session = create_session(conn, event, venue, "Opening", START,
                                 START + timedelta(hours=3), START - timedelta(hours=1))
        issue_tickets(conn, [TicketSpec(session_id=session, holder=(n, "resident_id", d))
                             for n, d in PEOPLE])
        admin = create_staff(conn, "admin", "Amber-signal-58-river", "admin", actor="test")
        secret = totp.start_enrolment(conn, admin)
        totp.confirm_enrolment(conn, admin, pyotp.TOTP(secret).now(), actor="test")
    yield engine, key, hub_url, session
    engine.dispose()


def rotate(url: str, key: str, kill_after: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, ENV: key, KILL_AFTER_BATCHES: str(kill_after or "")}
    return subprocess.run([sys.executable, "-m", "cloud.cli", "--db", url, "--data-key", key,
                           "rotate-data-key", "--batch", "5"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def key_ids(engine) -> tuple[set, set]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(holders)).all()
        logged = conn.execute(sa.select(change_log.c.record).where(
            change_log.c.kind == "holder")).scalars().all()
    return ({key_id_of(v) for r in rows for v in (r.sealed_name, r.sealed_doc_number)},
            {key_id_of(r[f]) for r in logged for f in ("name", "doc_number")})


def test_a_rotation_killed_half_way_keeps_serving_and_resumes_to_the_end(hub):
    engine, key, url, session = hub
    old = load_keyring(key).current_id

    killed = rotate(url, key, kill_after=3)
    assert killed.returncode == -signal.SIGKILL
    assert "pass 1 [" in killed.stderr
    new, still_old = [kid for kid, _ in read_key_file(key)]
    assert still_old == old
    in_holders, in_log = key_ids(engine)
    assert in_holders == {old, new} and in_log == {old}  # half-way through the holders

    # the hub keeps serving: a sale seals under the new key, and a holder still under the old
    # key is found by its number and opens
    with engine.begin() as conn:
        sold = issue_tickets(conn, [TicketSpec(session_id=session, holder=(
            "Late Buyer", "resident_id", resident_id("11010119900401123")))])
        assert sold
        last = conn.execute(sa.select(holders.c.id, holders.c.sealed_name).where(
            document_match(conn, PEOPLE[-1][1]))).one()
        assert key_id_of(last.sealed_name) == old
        assert holder(conn, last.id).name == PEOPLE[-1][0]

    done = rotate(url, key)
    assert done.returncode == 0, done.stderr
    assert "resuming the rotation" in done.stderr and "100%" in done.stderr
    assert [kid for kid, _ in read_key_file(key)] == [new]  # the old key is gone
    assert key_ids(engine) == ({new}, {new})
    with engine.connect() as conn:  # the staff's one-time password secrets too
        (row,) = conn.execute(sa.select(staff_totp)).all()
        assert key_id_of(row.secret) == new
        opened = load_keyring(key).open(row.secret, context("staff_totp", row.staff_id, "secret"))
        assert len(opened) == 32 and totp.enrolled(conn, row.staff_id)
    ring = load_keyring(key)
    assert ring.ids == (new,)
    with engine.connect() as conn:
        opened = {(h.name, h.doc_number) for h in (
            holder(conn, i) for i in conn.execute(sa.select(holders.c.id)).scalars())}
        assert set(PEOPLE) <= opened and len(opened) == len(PEOPLE) + 1
        for _, number in PEOPLE:
            assert conn.execute(sa.select(sa.func.count()).select_from(holders).where(
                document_match(conn, number))).scalar_one() == 1
        venue = conn.execute(sa.text("SELECT id FROM venues")).scalar_one()
        served = [c for c in open_changes(conn, changes_since(conn, venue, 0))
                  if c["type"] == "holder"]
        assert {(c["name"], c["doc_number"]) for c in served} == opened


def test_a_rotation_refuses_a_key_file_others_may_read(hub):
    engine, key, url, _ = hub
    os.chmod(key, 0o644)
    r = rotate(url, key)
    assert r.returncode == 2 and "chmod 600" in r.stderr
    os.chmod(key, 0o600)
    assert len(read_key_file(key)) == 1
