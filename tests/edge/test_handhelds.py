"""The handheld rules without HTTP: the engine's on_record hook and the recording race."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta

import pytest

from edge import db as db_mod
from edge import handhelds
from edge.engine import Engine, GroupScan, Scan, ScanKind, UnknownLane
from edge.holders import HolderVault
from edge.reasons import Reason
from sync.timeutil import from_iso, to_iso
from tests.conftest import NOW


def entries(conn) -> int:
    return conn.execute("SELECT count(*) FROM entries").fetchone()[0]


def test_decide_all_commits_once_and_rolls_back_only_the_scan_whose_hook_failed(
        engine, loaded, venue):
    class Stop(Exception):
        pass

    seen = []

    def refuse(conn, decision):
        assert conn.execute("SELECT count(*) FROM entries WHERE id = ?",
                            (decision.entry_id,)).fetchone()[0] == 1
        raise Stop

    def keep(conn, decision):
        seen.append(decision.entry_id)

    code = venue.tickets[1002].code
    other = venue.tickets[1006].code
    results = engine.decide_all([
        GroupScan(Scan(ScanKind.QR, code), "N1", NOW, refuse),
        GroupScan(Scan(ScanKind.QR, code), "N1", NOW, keep),
        GroupScan(Scan(ScanKind.QR, code), "N2", NOW, keep),
        GroupScan(Scan(ScanKind.QR, other), "N1", NOW)])
    assert isinstance(results[0], Stop)
    # the refused scan left nothing behind: the next one is the ticket's first entry
    assert [r.reason for r in results[1:]] == [Reason.OK, Reason.ALREADY_ENTERED, Reason.OK]
    assert seen == [results[1].entry_id, results[2].entry_id]
    assert entries(loaded) == 3 and not loaded.in_transaction
    # one group, one decision at a time: the same answers as deciding them one by one
    d = engine.decide(Scan(ScanKind.QR, other), "N2", NOW)
    assert d.reason is Reason.ALREADY_ENTERED


def test_a_group_looks_at_the_configuration_once_and_still_sees_a_change_before_it(
        engine, loaded, venue):
    engine.decide(Scan(ScanKind.QR, venue.tickets[1002].code), "N1", NOW)
    loaded.execute("UPDATE lanes SET enabled = 0 WHERE code = 'N2'")  # before the group
    statements = []
    loaded.set_trace_callback(statements.append)
    results = engine.decide_all([
        GroupScan(Scan(ScanKind.QR, venue.tickets[t].code), lane, NOW)
        for t, lane in ((1006, "N1"), (1007, "N1"), (1008, "N2"))])
    loaded.set_trace_callback(None)
    assert results[0].reason is Reason.OK and isinstance(results[2], UnknownLane)
    assert len(statements) > 8  # the trace saw the group
    # the write transaction holds the lock: what its first scan read stays true to the end
    assert sum(s.startswith("PRAGMA data_version") for s in statements) == 1


def test_a_database_error_fails_the_whole_group_and_records_nothing(engine, loaded, venue):
    def broken(conn, decision):
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    results = engine.decide_all([
        GroupScan(Scan(ScanKind.QR, venue.tickets[1006].code), "N1", NOW),
        GroupScan(Scan(ScanKind.QR, venue.tickets[1002].code), "N1", NOW, broken)])
    assert [r.reason for r in results] == [Reason.DEVICE_ERROR] * 2
    assert all(not r.open_lane and r.entry_id is None for r in results)
    assert entries(loaded) == 0


def test_a_group_commit_decides_what_waits_together_and_answers_each(loaded, db_path,
                                                                     holder_key, venue):
    local = threading.local()
    commits = []

    def engine_here():
        if getattr(local, "engine", None) is None:
            c = db_mod.connect(db_path)
            c.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
            local.engine = Engine(c, HolderVault(holder_key))
        return local.engine

    group = handhelds.GroupCommit(engine_here)
    tickets = [1002 + 4 * i for i in range(8)]
    barrier = threading.Barrier(len(tickets) * 2)
    answers = {}

    def send(i, tid):
        barrier.wait()
        answers[i] = group.decide([GroupScan(Scan(ScanKind.QR, venue.tickets[tid].code),
                                             ("N1", "N2")[i % 2], NOW)])[0]

    threads = [threading.Thread(target=send, args=(i, tid))
               for i, tid in enumerate(tickets + tickets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == len(threads)
    for tid in tickets:
        reasons = sorted(str(a.reason) for a in answers.values() if a.ticket.id == tid)
        assert reasons == ["ALREADY_ENTERED", "OK"], tid
    assert entries(loaded) == len(threads)
    assert len(commits) < len(threads)  # waiting scans shared commits


def test_losing_the_race_for_a_client_scan_id_returns_the_winners_verdict(
        engine, loaded, venue, db_path, monkeypatch):
    code = handhelds.create_pairing(loaded, "PDA", [], actor="admin", now=NOW).code
    paired = handhelds.pair(loaded, code, now=NOW)
    hh = handhelds.authenticate(loaded, paired.token)
    req = handhelds.ScanRequest("race-0000001", "N1", ScanKind.QR, venue.tickets[1002].code)
    winner = handhelds.scan(engine, hh, req, now=NOW)
    # the loser looked for the id before the winner recorded it, and decides anyway
    real_prior, calls = handhelds._prior, []

    def stale_prior(conn, handheld, csid):
        calls.append(csid)
        return None if len(calls) == 1 else real_prior(conn, handheld, csid)

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


# -- offline scans that arrive too late ------------------------------------------------------


def _handheld(loaded):
    code = handhelds.create_pairing(loaded, "PDA", [], actor="admin", now=NOW).code
    return handhelds.authenticate(loaded, handhelds.pair(loaded, code, now=NOW).token)


def _batch(venue, made, *tickets, lane="N1"):
    """Scans made at ``made`` by a handheld whose clock is right (no ``sent_at``: no skew)."""
    return {"scans": [
        {"client_scan_id": f"late-{tid:08d}", "lane": lane, "kind": "qr",
         "data": venue.tickets[tid].code, "scanned_at": to_iso(made)} for tid in tickets]}


def _window_closes(loaded, session=1, gate="G1"):
    (ends,) = loaded.execute("SELECT ends_at FROM sessions WHERE id = ?", (session,)).fetchone()
    (after,) = loaded.execute("SELECT close_after_min FROM gates WHERE code = ?",
                              (gate,)).fetchone()
    return from_iso(ends) + timedelta(minutes=after)


def test_an_offline_scan_arriving_after_its_sessions_entry_window_is_refused(engine, loaded,
                                                                             venue):
    hh = _handheld(loaded)
    closes = _window_closes(loaded)
    made = NOW  # session 1 is open: admitted, had it arrived in time
    in_time = handhelds.upload(engine, hh, _batch(venue, made, 1002), now=closes)
    assert [r["reason"] for r in in_time] == ["OK"]
    late = handhelds.upload(engine, hh, _batch(venue, made, 1006),
                            now=closes + timedelta(seconds=1))
    (r,) = late
    assert r["reason"] == "EXPIRED" and r["verdict"] == "refuse" and not r["open_lane"]
    assert r["detail"].startswith("offline scan arrived after its entry window closed at ")
    assert r["at"] == to_iso(made) and r["recorded"] is True
    row = loaded.execute("SELECT reason, admitted, ticket_id, session_id, detail FROM entries "
                         "WHERE id = ?", (r["entry_id"],)).fetchone()
    assert row[:4] == ("EXPIRED", 0, 1006, 1) and row[4] == r["detail"]
    # refused, not used: the holder can still come in at a lane while the session is on
    assert engine.decide(Scan(ScanKind.QR, venue.tickets[1006].code), "N1",
                         NOW).reason is Reason.OK


def test_a_late_scan_keeps_its_own_refusal_and_a_resend_gets_the_same_verdict(engine, loaded,
                                                                              venue):
    hh = _handheld(loaded)
    later = _window_closes(loaded) + timedelta(days=1)
    body = _batch(venue, NOW, venue.named["refunded"], 1010)
    first = handhelds.upload(engine, hh, body, now=later)
    assert [r["reason"] for r in first] == ["REVOKED", "EXPIRED"]
    again = handhelds.upload(engine, hh, body, now=later + timedelta(hours=1))
    assert [(r["reason"], r["duplicate"]) for r in again] == [("REVOKED", True),
                                                              ("EXPIRED", True)]
    assert entries(loaded) == 2


def test_a_fixed_maximum_age_refuses_older_offline_scans_inside_the_window(engine, loaded,
                                                                           venue):
    hh = _handheld(loaded)
    arrived = NOW + timedelta(minutes=30)  # session 1 is still open
    fresh = handhelds.upload(engine, hh, _batch(venue, arrived - timedelta(minutes=15), 1002),
                             now=arrived, max_age=timedelta(minutes=15))
    old = handhelds.upload(engine, hh, _batch(venue, arrived - timedelta(minutes=16), 1006),
                           now=arrived, max_age=timedelta(minutes=15))
    assert fresh[0]["reason"] == "OK"
    assert old[0]["reason"] == "EXPIRED"
    assert old[0]["detail"] == "offline scan arrived more than 15 minutes after it was made"


def test_a_maximum_age_is_no_way_past_the_entry_window(engine, loaded, venue):
    """A handheld chooses the scan times it sends: a scan claimed to be a minute old that
    reaches the appliance after its window closed is still refused, by the time it arrived."""
    hh = _handheld(loaded)
    arrived = _window_closes(loaded) + timedelta(seconds=1)
    (r,) = handhelds.upload(engine, hh, _batch(venue, arrived - timedelta(minutes=1), 1006),
                            now=arrived, max_age=timedelta(days=365))
    assert r["reason"] == "EXPIRED"
    assert r["detail"].startswith("offline scan arrived after its entry window closed at ")


def test_a_ticket_without_a_session_must_arrive_within_its_validity(engine, loaded, venue):
    hh = _handheld(loaded)
    (until,) = loaded.execute("SELECT valid_until FROM tickets WHERE id = ?",
                              (venue.named["staff"],)).fetchone()
    body = _batch(venue, NOW, venue.named["staff"])
    (r,) = handhelds.upload(engine, hh, body, now=from_iso(until) + timedelta(minutes=1))
    assert r["reason"] == "EXPIRED" and "entry window closed" in r["detail"]


def test_a_scan_sent_live_is_never_judged_late(engine, loaded, venue):
    hh = _handheld(loaded)
    req = handhelds.ScanRequest("live-0000001", "N1", ScanKind.QR, venue.tickets[1002].code)
    assert handhelds.scan(engine, hh, req, now=NOW)["reason"] == "OK"
