"""``wicket-provision reset``: refuses while the hub lacks entries, exports them first with
--force (a signed file that verifies), and leaves no database or credential behind."""

from __future__ import annotations

import pytest

from cloud.sales.tickets import issue_ticket
from edge import config as config_mod
from edge import db as db_mod
from edge.emergency import read_export, signing_key
from edge.engine import Engine, Scan, ScanKind
from edge.holders import HolderVault
from edge.reasons import Reason
from tests.provisioning.conftest import provision


@pytest.fixture
def box_with_entries(hub, box):
    venue = hub.add_venue("RST")
    with hub.begin() as conn:
        tickets = [issue_ticket(conn, session_id=venue["session"]) for _ in range(3)]
    r = provision("enroll", "--hub", hub.process.url, f"--token={hub.token(venue)}", config=box)
    assert r.returncode == 0, r.stderr
    cfg = config_mod.load(box)
    conn = db_mod.connect(cfg.database)
    try:
        gate = conn.execute("SELECT id FROM gates ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute("INSERT INTO lanes (code, gate_id, direction) VALUES ('L1', ?, 'in')",
                     (gate,))
        engine = Engine(conn, HolderVault(cfg.holder_key))
        for t in tickets[:2]:
            assert engine.decide(Scan(ScanKind.QR, t.code), "L1").reason is Reason.OK
    finally:
        conn.close()
    return box


def _left(box) -> set[str]:
    return {p.name for p in box.parent.iterdir()}


def test_reset_refuses_with_unacknowledged_entries_then_force_exports_them(box_with_entries):
    box = box_with_entries
    holder_key = config_mod.load(box).holder_key
    r = provision("reset", "--yes", config=box)
    assert r.returncode == 1
    assert "2 entries are not yet acknowledged" in r.stderr and "--force" in r.stderr
    assert {"edge.db", "edge.hub.json"} <= _left(box)

    export = box.parent / "saved.jsonl"
    r = provision("reset", "--force", "--export", str(export), config=box, input="no\n")
    assert r.returncode == 1 and "not confirmed" in r.stderr
    assert not export.exists() and "edge.db" in _left(box)

    r = provision("reset", "--force", "--export", str(export), config=box, input="reset\n")
    assert r.returncode == 0, r.stderr
    assert str(export) in r.stdout
    header, entries = read_export(export.read_bytes(), signing_key(holder_key), None)
    assert header["count"] == 2 and len(entries) == 2
    assert all(e["admitted"] for e in entries)
    # no database, no credential; the configuration and the web certificate stay
    assert _left(box) == {"edge.toml", "web-cert.pem", "web-key.pem", "saved.jsonl"}
    assert config_mod.load(box).holder_key == holder_key  # the key stays unless asked


def test_force_without_a_file_exports_beside_the_database(box_with_entries):
    box = box_with_entries
    r = provision("reset", "--yes", "--force", "--with-config", config=box)
    assert r.returncode == 0, r.stderr
    left = _left(box)
    assert len(left) == 1 and next(iter(left)).startswith("wicket-entries-before-reset-")
    assert next(iter(left)) in r.stdout


def test_reset_then_the_box_enrolls_again(hub, box):
    venue = hub.add_venue("AGN")
    assert provision("enroll", "--hub", hub.process.url, f"--token={hub.token(venue)}",
                     config=box).returncode == 0
    r = provision("reset", "--yes", config=box)
    assert r.returncode == 0, r.stderr
    assert _left(box) == {"edge.toml", "web-cert.pem", "web-key.pem"}
    r = provision("enroll", "--hub", hub.process.url, "--token=" + hub.token(venue, "again"),
                  config=box)
    assert r.returncode == 0, r.stderr
