"""The handheld rules without HTTP: the engine's on_record hook and the recording race."""

from __future__ import annotations

import sqlite3

import pytest

from edge import handhelds
from edge.engine import Scan, ScanKind
from edge.reasons import Reason
from tests.conftest import NOW


def entries(conn) -> int:
    return conn.execute("SELECT count(*) FROM entries").fetchone()[0]


def test_what_on_record_raises_rolls_the_decision_back(engine, loaded, venue):
    code = venue.tickets[1002].code

    class Stop(Exception):
        pass

    def refuse(decision):
        assert decision.entry_id is not None
        assert loaded.execute("SELECT count(*) FROM entries WHERE id = ?",
                              (decision.entry_id,)).fetchone()[0] == 1
        raise Stop

    with pytest.raises(Stop):
        engine.decide(Scan(ScanKind.QR, code), "N1", NOW, on_record=refuse)
    assert entries(loaded) == 0 and not loaded.in_transaction
    seen = []
    d = engine.decide(Scan(ScanKind.QR, code), "N1", NOW, on_record=seen.append)
    assert d.reason is Reason.OK and seen == [d] and entries(loaded) == 1


def test_a_database_error_in_on_record_keeps_the_lane_shut(engine, loaded, venue):
    def broken(decision):
        loaded.execute("INSERT INTO no_such_table VALUES (1)")

    d = engine.decide(Scan(ScanKind.QR, venue.tickets[1002].code), "N1", NOW, on_record=broken)
    assert d.reason is Reason.DEVICE_ERROR and not d.open_lane and d.entry_id is None
    assert entries(loaded) == 0


def test_losing_the_race_for_a_client_scan_id_returns_the_winners_verdict(
        engine, loaded, venue, db_path, monkeypatch):
    code = handhelds.create_pairing(loaded, "PDA", [], actor="admin", now=NOW).code
    paired = handhelds.pair(loaded, code, now=NOW)
    hh = handhelds.authenticate(loaded, paired.token)
    req = handhelds.ScanRequest("race-0000001", "N1", ScanKind.QR, venue.tickets[1002].code)
    winner = handhelds.scan(engine, hh, req, now=NOW)
    # the loser looked for the id before the winner recorded it, and decides anyway
    real_prior, calls = handhelds._prior, []

    def stale_prior(conn, csid):
        calls.append(csid)
        return None if len(calls) == 1 else real_prior(conn, csid)

    monkeypatch.setattr(handhelds, "_prior", stale_prior)
    loser = handhelds.scan(engine, hh, req, now=NOW)
    assert len(calls) == 2
    assert loser["duplicate"] is True and loser["entry_id"] == winner["entry_id"]
    assert loser["reason"] == "OK" and entries(loaded) == 1


def test_a_failing_database_records_nothing_and_says_so(engine, loaded, venue):
    code = handhelds.create_pairing(loaded, "PDA", [], actor="admin", now=NOW).code
    hh = handhelds.authenticate(loaded, handhelds.pair(loaded, code, now=NOW).token)
    other = sqlite3.connect(loaded.execute("PRAGMA database_list").fetchone()[2], timeout=0)
    engine.conn.execute("PRAGMA busy_timeout = 0")
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock: decide cannot begin
    req = handhelds.ScanRequest("busy-0000001", "N1", ScanKind.QR, venue.tickets[1002].code)
    v = handhelds.scan(engine, hh, req, now=NOW)
    other.execute("ROLLBACK")
    other.close()
    assert v["reason"] == "DEVICE_ERROR" and v["recorded"] is False and v["entry_id"] is None
    again = handhelds.scan(engine, hh, req, now=NOW)
    assert again["reason"] == "OK" and again["recorded"] is True and not again["duplicate"]


def test_a_revoked_handheld_is_refused_and_keeps_its_history(engine, loaded, venue):
    code = handhelds.create_pairing(loaded, "PDA", [], actor="admin", now=NOW).code
    paired = handhelds.pair(loaded, code, now=NOW)
    hh = handhelds.authenticate(loaded, paired.token)
    handhelds.scan(engine, hh, handhelds.ScanRequest(
        "hist-0000001", "N1", ScanKind.QR, venue.tickets[1002].code), now=NOW)
    assert handhelds.revoke(loaded, paired.device_id, actor="admin") == 1
    with pytest.raises(handhelds.HandheldError) as e:
        handhelds.authenticate(loaded, paired.token)
    assert e.value.code == "unauthorized"
    assert loaded.execute("SELECT state FROM devices WHERE id = ?",
                          (paired.device_id,)).fetchone() == ("disabled",)
    assert loaded.execute("SELECT count(*) FROM handheld_scans").fetchone()[0] == 1
