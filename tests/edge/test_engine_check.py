"""Engine.check: the help desk's "check without admitting" answers as decide would, and
changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edge.engine import IdDocument, Scan, ScanKind, UnknownLane
from edge.reasons import Reason
from tests.conftest import NOW


def qr(venue, name):
    return Scan(ScanKind.QR, venue.tickets[venue.named[name]].code)


def count(conn):
    return conn.execute("SELECT count(*) FROM entries").fetchone()[0]


@pytest.mark.parametrize("name, lane, reason", [
    ("seated", "N1", Reason.OK),
    ("refunded", "N1", Reason.REVOKED),
    ("blocked", "N1", Reason.BLOCKED),
    ("wrong_gate", "N1", Reason.WRONG_GATE),
    ("evening", "N1", Reason.NOT_YET_VALID),
    ("unsynced", "N1", Reason.OK),
    ("realname", "S1", Reason.REALNAME_REQUIRED),
])
def test_check_answers_what_decide_would_and_records_nothing(engine, venue, loaded, name, lane,
                                                             reason):
    checked = engine.check(qr(venue, name), lane, NOW)
    assert checked.reason is reason
    assert checked.entry_id is None and checked.open_lane is False
    assert count(loaded) == 0
    decided = engine.decide(qr(venue, name), lane, NOW)
    assert decided.reason is reason
    assert (checked.ticket, checked.holder_masked, checked.detail) == \
        (decided.ticket, decided.holder_masked, decided.detail)
    assert count(loaded) == 1


def test_check_sees_the_repeat_and_the_first_entry(engine, venue):
    first = engine.decide(qr(venue, "seated"), "N1", NOW)
    again = engine.check(qr(venue, "seated"), "N2", NOW + timedelta(minutes=3))
    assert again.reason is Reason.ALREADY_ENTERED
    assert again.first_entry_at == first.at


def test_check_with_an_id_card(engine, venue, loaded):
    t = venue.tickets[venue.named["realname"]]
    _, doc_type, number = venue.holders[t.holder_id]
    scan = Scan(ScanKind.QR, t.code, document=IdDocument(doc_type, number))
    assert engine.check(scan, "S1", NOW).reason is Reason.OK
    assert engine.decide(scan, "S1", NOW).reason is Reason.OK
    assert engine.check(scan, "S1", NOW).reason is Reason.ALREADY_ENTERED
    assert count(loaded) == 1


def test_check_between_decisions_keeps_the_engine_current(engine, venue, db_path, vault):
    """A check in between must not leave the engine's cached state stale: a change another
    process commits after the check is still seen by the next decision."""
    from edge import db as db_mod

    engine.decide(qr(venue, "seated"), "N1", NOW)
    engine.check(qr(venue, "other_holder"), "N2", NOW)
    other = db_mod.connect(db_path)
    other.execute("UPDATE lanes SET enabled = 0 WHERE code = 'N2'")
    other.close()
    with pytest.raises(UnknownLane, match="N2 is disabled"):
        engine.check(qr(venue, "other_holder"), "N2", NOW)
    with pytest.raises(UnknownLane, match="N2 is disabled"):
        engine.decide(qr(venue, "other_holder"), "N2", NOW)
    assert engine.decide(qr(venue, "other_holder"), "N1", NOW).reason is Reason.OK


def test_check_does_not_take_the_write_lock(engine, venue, db_path, loaded):
    from edge import db as db_mod

    writer = db_mod.connect(db_path)
    writer.execute("BEGIN IMMEDIATE")
    try:
        assert engine.check(qr(venue, "seated"), "N1", NOW).reason is Reason.OK
    finally:
        writer.execute("ROLLBACK")
        writer.close()
